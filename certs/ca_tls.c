/* ca_tls: see ca_tls.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "certs/ca_tls.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

#define CA_TLS_LOG "ca"

struct ca_tls {
    ca *ca;
    char *dns[3]; /* besides istiod.istio-system.svc, which the CA always adds */
    int64_t ttl_s;
    pthread_mutex_t mu; /* guards everything below */
    ca_serving_cert cur;
    uint64_t gen;        /* bumped on each new certificate */
    uint64_t served_gen; /* the generation the fetcher last handed to gRPC */
};

/* Issues a certificate into t->cur (mu held). */
static int tls_issue(ca_tls *t, char *err, size_t errlen)
{
    ca_serving_cert next = {0};
    int rc =
        ca_issue_serving_cert(t->ca, (const char *const *)t->dns, 3, t->ttl_s, &next, err, errlen);
    if (rc != CA_OK)
        return rc;
    ca_serving_cert_free(&t->cur);
    t->cur = next;
    t->gen++;
    return CA_OK;
}

/* gRPC's certificate config fetcher: called for every new connection on the secure port.
 * The first call of each security connector must return NEW (served_gen starts at 0). */
static grpc_ssl_certificate_config_reload_status
tls_fetch(void *ud, grpc_ssl_server_certificate_config **config)
{
    ca_tls *t = ud;
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    char err[256];
    *config = NULL;
    pthread_mutex_lock(&t->mu);
    if (time(NULL) >= t->cur.renew_at) {
        /* Late renewal in the handshake path: the timer normally does it first. */
        if (tls_issue(t, err, sizeof(err)) != CA_OK)
            LOG_ERR(CA_TLS_LOG, "serving certificate renewal failed: %s", err);
        else
            LOG_INFO(CA_TLS_LOG, "renewed the istiod serving certificate (valid until %lld)",
                     (long long)t->cur.not_after);
    }
    if (t->served_gen != t->gen) {
        grpc_ssl_pem_key_cert_pair pair = {t->cur.key_pem, t->cur.cert_chain_pem};
        *config = grpc_ssl_server_certificate_config_create(t->cur.root_pem, &pair, 1);
        if (*config != NULL) {
            t->served_gen = t->gen;
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        } else {
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

ca_tls *ca_tls_new(ca *c, const char *domain, int64_t ttl_s, char *err, size_t errlen)
{
    ca_tls *t = xcalloc(1, sizeof(*t));
    const char *d = domain && *domain ? domain : "cluster.local";
    t->ca = c;
    t->ttl_s = ttl_s;
    t->dns[0] = xasprintf("%s.%s", CA_ISTIOD_DNS_NAME, d);
    t->dns[1] = xstrdup("istiod.istio-system");
    t->dns[2] = xstrdup("istiod");
    pthread_mutex_init(&t->mu, NULL);
    if (tls_issue(t, err, errlen) != CA_OK) {
        for (int i = 0; i < 3; i++)
            free(t->dns[i]);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    grpc_init();
    return t;
}

void ca_tls_free(ca_tls *t)
{
    if (t == NULL)
        return;
    ca_serving_cert_free(&t->cur);
    for (int i = 0; i < 3; i++)
        free(t->dns[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
    grpc_shutdown();
}

struct grpc_server_credentials *ca_tls_server_credentials(ca_tls *t)
{
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY, tls_fetch, t);
    if (o == NULL)
        return NULL;
    /* A new security connector asks first: it must get NEW, whatever earlier ones got. */
    pthread_mutex_lock(&t->mu);
    t->served_gen = 0;
    pthread_mutex_unlock(&t->mu);
    return grpc_ssl_server_credentials_create_with_options(o); /* takes o */
}

bool ca_tls_renew_if_needed(ca_tls *t, bool force)
{
    bool renewed = false;
    char err[256];
    pthread_mutex_lock(&t->mu);
    if (force || time(NULL) >= t->cur.renew_at) {
        if (tls_issue(t, err, sizeof(err)) != CA_OK) {
            LOG_ERR(CA_TLS_LOG, "serving certificate renewal failed: %s", err);
        } else {
            renewed = true;
            LOG_INFO(CA_TLS_LOG, "renewed the istiod serving certificate (valid until %lld)",
                     (long long)t->cur.not_after);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return renewed;
}

int ca_tls_export(ca_tls *t, char **cert_chain_pem, char **key_pem, uint64_t *gen)
{
    int rc = -1;
    *cert_chain_pem = *key_pem = NULL;
    pthread_mutex_lock(&t->mu);
    if (t->cur.cert_chain_pem && t->cur.key_pem) {
        *cert_chain_pem = xstrdup(t->cur.cert_chain_pem);
        *key_pem = xstrdup(t->cur.key_pem);
        if (gen)
            *gen = t->gen;
        rc = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

uint64_t ca_tls_generation(ca_tls *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t g = t->gen;
    pthread_mutex_unlock(&t->mu);
    return g;
}

time_t ca_tls_not_after(ca_tls *t)
{
    pthread_mutex_lock(&t->mu);
    time_t na = t->cur.not_after;
    pthread_mutex_unlock(&t->mu);
    return na;
}
