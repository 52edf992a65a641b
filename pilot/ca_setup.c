/* ca_setup: see ca_setup.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_security.h>

#include "certs/ca.h"
#include "certs/ca_kube.h"
#include "certs/ca_service.h"
#include "certs/ca_tls.h"
#include "k8s/k8s.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/ca_setup.h"

#define CA_SETUP_LOG "ca"

struct pilot_ca {
    bool kube;
    char *secure_addr;   /* "" = none */
    char *ns;            /* istiod's namespace (the Secret's) */
    int64_t interval_ns; /* rotation check period */
    k8s_client *kc;      /* kube mode or --kubeconfig: TokenReview and writes */
    ca *ca;
    ca_service *svc;
    ca_tls *tls;
    grpc_server_credentials *creds;
    ca_kube_dist *dist;
    /* istio-namespace-controller-election: only its leader writes the root ConfigMaps */
    k8s_lease *lease;
    int64_t lease_ns; /* PILOT_LEADER_LEASE_DURATION */

    pthread_t timer;
    bool timer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* mkdir -p of the state directory's parents (ca_new makes the last component, 0700). */
static void mkdir_parents(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            break;
        *s = '/';
    }
    free(p);
}

#define CA_RETRY_FIRST_MS 1000
#define CA_RETRY_MAX_MS 30000
#define CA_RETRY_LOG_NS (60LL * 1000000000LL)

/* ca_kube_new_ca until the API server answers (CA_EUNAVAILABLE: a failed request); any
 * other code (a bad plug-in directory, a broken Secret) will not heal by waiting and is
 * returned at once. The log stays bounded: a line for the
 * first failure, for a different error, and at most one a minute otherwise. */
static int kube_ca_retry(pilot_ca *p, const ca_opts *o, pilot_ca_wait_fn wait, void *ud, char *err,
                         size_t errlen)
{
    int64_t delay = CA_RETRY_FIRST_MS, last_log = 0;
    char prev[512] = "";
    unsigned attempts = 0;
    int rc;

    for (;;) {
        rc = ca_kube_new_ca(p->kc, p->ns, o, &p->ca, err, errlen);
        attempts++;
        if (rc != CA_EUNAVAILABLE || wait == NULL)
            break;
        int64_t now = util_now_ns();
        if (attempts == 1 || strcmp(prev, err) != 0 || now - last_log >= CA_RETRY_LOG_NS) {
            LOG_WARN(CA_SETUP_LOG,
                     "CA: %s; retrying (attempt %u, next in %lld ms) until the "
                     "API server answers",
                     err, attempts, (long long)delay);
            snprintf(prev, sizeof(prev), "%s", err);
            last_log = now;
        }
        if (wait(ud, delay)) {
            snprintf(err, errlen, "stopped while waiting for the API server");
            rc = CA_EUNAVAILABLE;
            goto out;
        }
        delay = delay * 2 > CA_RETRY_MAX_MS ? CA_RETRY_MAX_MS : delay * 2;
    }
    if (rc == CA_OK && attempts > 1)
        LOG_INFO(CA_SETUP_LOG, "CA: the API server answered after %u attempts", attempts);
out:
    return rc;
}

pilot_ca *pilot_ca_new(const pilot_flags *f, bool kube)
{
    return pilot_ca_new_wait(f, kube, NULL, NULL);
}

pilot_ca *pilot_ca_new_wait(const pilot_flags *f, bool kube, pilot_ca_wait_fn wait, void *ud)
{
    char err[512] = "";
    pilot_ca *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->kube = kube;
    p->secure_addr = xstrdup(f->secure_grpc_addr ? f->secure_grpc_addr : kube ? ":15012" : "");
    const char *pod_ns = getenv("POD_NAMESPACE");
    p->ns = xstrdup(pod_ns && *pod_ns ? pod_ns : f->mesh.root_namespace);
    p->interval_ns = f->ca_check_interval_ns;
    p->lease_ns = f->leader_lease_duration_ns;

    ca_opts o = {
        .trust_domain = f->mesh.trust_domain,
        .cacerts_dir = f->ca_certs_dir,
        .state_dir = kube ? NULL : f->ca_state_dir,
        .key_type = strcmp(f->ca_key_type, "ecdsa") == 0 ? CA_KEY_EC_P256 : CA_KEY_RSA2048,
        .root_ttl_s = f->ca_root_ttl_ns / 1000000000LL,
        .default_ttl_s = f->ca_default_ttl_ns / 1000000000LL,
        .max_ttl_s = f->ca_max_ttl_ns / 1000000000LL,
    };
    if (kube) {
        k8s_config kc = {.kubeconfig = f->kubeconfig};
        if (!(p->kc = k8s_client_new(&kc, err, sizeof(err)))) {
            LOG_ERR(CA_SETUP_LOG, "CA: Kubernetes client: %s", err);
            goto fail;
        }
        if (kube_ca_retry(p, &o, wait, ud, err, sizeof(err)) != CA_OK) {
            LOG_ERR(CA_SETUP_LOG, "CA: %s", err);
            goto fail;
        }
        p->dist = ca_kube_dist_new(p->kc, p->ca);
    } else {
        if (o.state_dir && *o.state_dir)
            mkdir_parents(o.state_dir);
        if (ca_new(&o, &p->ca, err, sizeof(err)) != CA_OK) {
            LOG_ERR(CA_SETUP_LOG, "CA: %s", err);
            goto fail;
        }
    }
    p->svc = ca_service_new(p->ca, p->kc ? k8s_token_review : NULL, p->kc);
    /* One serving certificate for the TLS gRPC port and the webhooks (--httpsAddr). */
    if (p->secure_addr[0] || (f->https_addr && f->https_addr[0])) {
        if (!(p->tls = ca_tls_new(p->ca, f->domain, 0, err, sizeof(err)))) {
            LOG_ERR(CA_SETUP_LOG, "CA: istiod serving certificate: %s", err);
            goto fail;
        }
    }
    if (p->secure_addr[0]) {
        if (!(p->creds = ca_tls_server_credentials(p->tls))) {
            LOG_ERR(CA_SETUP_LOG, "CA: cannot create TLS server credentials");
            goto fail;
        }
    }
    LOG_INFO(CA_SETUP_LOG, "CA ready: root from %s, trust domain %s, TokenReview %s, TLS %s",
             ca_get_source(p->ca) == CA_SOURCE_PLUGIN      ? "the plug-in directory"
             : ca_get_source(p->ca) == CA_SOURCE_IMPORTED  ? "Secret istio-ca-secret"
             : ca_get_source(p->ca) == CA_SOURCE_STATE_DIR ? "the state directory"
                                                           : "a new self-signed root",
             ca_trust_domain(p->ca), p->kc ? "on" : "off (client certificates only)",
             p->secure_addr[0] ? p->secure_addr : "off");
    return p;
fail:
    pilot_ca_free(p);
    return NULL;
}

int pilot_ca_serving_cert(void *ud, uint64_t have_gen, char **cert_chain_pem, char **key_pem,
                          uint64_t *gen)
{
    pilot_ca *p = ud;
    if (!p->tls)
        return -1;
    if (have_gen && ca_tls_generation(p->tls) == have_gen)
        return 0;
    return ca_tls_export(p->tls, cert_chain_pem, key_pem, gen) == 0 ? 1 : -1;
}

char *pilot_ca_root_pem(void *ud)
{
    return ca_root_pem(((pilot_ca *)ud)->ca);
}

k8s_client *pilot_ca_kube_client(pilot_ca *p)
{
    return p->kc;
}

const char *pilot_ca_secure_addr(const pilot_ca *p)
{
    return p->secure_addr;
}

void pilot_ca_xds_opts(pilot_ca *p, xds_server_opts *xo)
{
    if (p->creds) {
        xo->secure_addr = p->secure_addr;
        xo->secure_creds = p->creds;
    }
    xo->trust_domain = ca_trust_domain(p->ca);
    if (p->kc) {
        xo->review = k8s_token_review;
        xo->review_ud = p->kc;
    }
}

/* Like istiod: with a TLS port the CA is served only there; the plaintext port answers
 * as if the service did not exist. */
static int ca_unary(void *ud, const xds_call_auth *auth, const uint8_t *req, size_t req_len,
                    uint8_t **resp, size_t *resp_len, char **status_message)
{
    pilot_ca *p = ud;
    if (p->creds && !(auth && auth->secure)) { /* a TLS port exists (not just the webhooks') */
        *status_message = xstrdup("unknown service istio.v1.auth.IstioCertificateService "
                                  "(served on the secure gRPC port)");
        return 12; /* GRPC_STATUS_UNIMPLEMENTED */
    }
    ca_caller who = {0};
    if (auth) {
        who = (ca_caller){.peer = auth->peer,
                          .bearer_token = auth->bearer_token,
                          .peer_uri_sans = auth->peer_uri_sans,
                          .npeer_uri_sans = auth->npeer_uri_sans,
                          .secure = auth->secure};
    }
    return ca_service_create_certificate(p->svc, &who, req, req_len, resp, resp_len,
                                         status_message);
}

void pilot_ca_register(pilot_ca *p, xds_server *xds)
{
    xds_server_register_unary(xds, CA_SERVICE_METHOD, ca_unary, p);
}

source_sink pilot_ca_sink(pilot_ca *p, source_sink inner)
{
    return p->dist ? ca_kube_dist_sink(p->dist, inner) : inner;
}

/* One check: rotate the root when due, then follow it everywhere it went. */
static void ca_tick(pilot_ca *p)
{
    char err[512] = "";
    bool rotated = false;
    if (ca_rotate_if_needed(p->ca, time(NULL), &rotated, err, sizeof(err)) != CA_OK) {
        LOG_ERR(CA_SETUP_LOG, "root rotation failed (the old root stays): %s", err);
    } else if (rotated) {
        LOG_INFO(CA_SETUP_LOG, "rotated the self-signed root (same key)");
        if (p->kube && ca_kube_store_root(p->kc, p->ns, p->ca, err, sizeof(err)) != CA_OK)
            LOG_ERR(CA_SETUP_LOG, "storing the rotated root: %s", err);
        if (p->dist)
            ca_kube_dist_root_changed(p->dist);
    }
    ca_service_update_root_metric(p->svc);
    if (p->tls)
        ca_tls_renew_if_needed(p->tls, rotated);
}

static void *ca_timer_main(void *arg)
{
    pilot_ca *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += p->interval_ns / 1000000000LL;
        ts.tv_nsec += p->interval_ns % 1000000000LL;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        ca_tick(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static bool lease_fence(void *ud)
{
    return k8s_lease_fence(ud);
}

static void lease_changed(void *ud, bool leading)
{
    ca_kube_dist_leading(ud, leading);
}

/* istiod's identity: the pod's name, else "unknown-<hostname>". */
static char *lease_identity(void)
{
    const char *pod = getenv("POD_NAME");
    if (pod && *pod)
        return xstrdup(pod);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    return xasprintf("unknown-%s", host);
}

int pilot_ca_start(pilot_ca *p)
{
    if (p->dist) {
        /* Several replicas: the root ConfigMaps are the namespace controller's, which
         * istiod runs under this election. The guard is set before the thread starts. */
        char *id = lease_identity();
        k8s_lease_opts lo = {.ns = p->ns,
                             .name = "istio-namespace-controller-election",
                             .identity = id,
                             .duration_ns = p->lease_ns,
                             .on_change = lease_changed,
                             .ud = p->dist};
        ca_kube_dist_guard(p->dist, lease_fence, NULL);
        p->lease = k8s_lease_start(p->kc, &lo);
        free(id);
        if (!p->lease)
            return -1;
        ca_kube_dist_guard(p->dist, lease_fence, p->lease);
    }
    if (p->dist && ca_kube_dist_start(p->dist) != 0)
        return -1;
    if (pthread_create(&p->timer, NULL, ca_timer_main, p) != 0) {
        LOG_ERR(CA_SETUP_LOG, "cannot start the CA timer thread");
        return -1;
    }
    p->timer_started = true;
    return 0;
}

void pilot_ca_free(pilot_ca *p)
{
    if (p == NULL)
        return;
    if (p->timer_started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->timer, NULL);
    }
    /* The writer calls the lease's fence and the lease's thread calls the writer's setter:
     * stop the writer, then the lease (which may release it), then free the writer. */
    ca_kube_dist_stop(p->dist);
    k8s_lease_stop(p->lease);
    ca_kube_dist_free(p->dist);
    if (p->creds)
        grpc_server_credentials_release(p->creds);
    ca_tls_free(p->tls);
    ca_service_free(p->svc);
    ca_free(p->ca);
    k8s_client_free(p->kc);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->secure_addr);
    free(p->ns);
    free(p);
}
