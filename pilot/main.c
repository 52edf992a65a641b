/* main: `pilot-discovery discovery`. Wires the sources, the model, the xDS server and the
 * HTTP servers, then waits for SIGINT/SIGTERM on the main thread and shuts down: the
 * HTTP servers first (their handlers read everything else), then the sources, so nothing
 * feeds a model that is going away, then the rest in reverse order.
 *
 * Signals are blocked before any thread starts so that only sigwait() here sees them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pilot_version.h"
#include "k8s/k8s.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/ca_setup.h" /* ca: the built-in CA */
#include "pilot/cfgdir/cfgdir.h"
#include "pilot/flags.h"
#include "pilot/jwks/jwks.h"
#include "pilot/meshwatch.h"
#include "pilot/model/debug_model.h"
#include "pilot/model/model.h"
#include "pilot/obs/debug.h"
#include "pilot/obs/metrics.h"
#include "pilot/request.h"
#include "pilot/webhook/cabundle.h"
#include "pilot/webhook/webhook.h"
#include "xds/ads/server.h"
#include "xds/gen/gen.h" /* mesh config the generators read */

/* xds_snapshot_fn over the model (model_snapshot takes a typed model *). */
static mesh_snapshot *model_snapshot_fn(void *ud)
{
    return model_snapshot(ud);
}

static bool ready_cb(void *ud)
{
    return model_ready(ud);
}

/* Start-up waits (the CA for the API server): sleeps ms, or returns true at once when
 * SIGINT/SIGTERM arrives, so a never-answering API server still allows a clean stop. */
typedef struct startup_wait {
    const sigset_t *sigs;
    bool stopping;
} startup_wait;

static bool startup_wait_fn(void *ud, int64_t ms)
{
    startup_wait *w = ud;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(w->sigs, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
        LOG_INFO("default", "received %s during start-up, shutting down",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        w->stopping = true;
    }
    return w->stopping;
}

static int run_discovery(const pilot_flags *f)
{
    int rc = 1;
    model *m = NULL;
    cfgdir *cd = NULL;
    dbg_server *http = NULL, *mon = NULL;
    xds_server *xds = NULL;
    pilot_ca *pca = NULL;
    k8s_source *ks = NULL;
    wh_server *wh = NULL;
    wh_cabundle *cab = NULL;
    wh_injector *winj = NULL; /* the injector's settings (ConfigMap istio-sidecar-injector) */
    jwks_fetcher *jf = NULL;
    pilot_meshwatch *mw = NULL;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    LOG_INFO("default", "pilot-discovery %s-%s starting: domain %s, cluster %s", PILOT_VERSION,
             PILOT_GIT_REVISION, f->domain, f->cluster_id);
    metric_set(metric_gauge("pilot_info", "Pilot version and build information.", "version"),
               PILOT_VERSION "-" PILOT_GIT_REVISION, 1);
    /* Kubernetes: --kubeconfig, or in-cluster when neither --configDir nor --kubeconfig
     * is given and KUBERNETES_SERVICE_HOST is set. */
    const char *k8s_host = getenv("KUBERNETES_SERVICE_HOST");
    bool use_k8s =
        (f->kubeconfig && f->kubeconfig[0]) || (!f->config_dir && k8s_host && k8s_host[0]);
    if (!f->config_dir && !use_k8s)
        LOG_WARN("default", "neither --configDir nor --kubeconfig given and not in a cluster: "
                            "serving an empty mesh");

    model_opts mo = {
        .domain = f->domain,
        .debounce_after_ns = f->debounce_after_ns,
        .debounce_max_ns = f->debounce_max_ns,
        .nsources = (f->config_dir ? 1 : 0) + (use_k8s ? 1 : 0),
        .root_namespace = f->mesh.root_namespace,
        .cluster_id = f->cluster_id,
        .auto_mtls_off = f->mesh.auto_mtls_off,
        .export_defaults = &f->mesh.export_defaults,
        .ingress = &f->mesh.ingress,
        .ingress_ns = f->ingress_ns,
    };
    m = model_new(&mo);
    if (!m) {
        LOG_ERR("default", "cannot create the model");
        goto out;
    }
    model_debug_register(m);
    model_debug_register_mesh(f->mesh_config, f->mesh.root_namespace, f->mesh.trust_domain);
    dbg_set_ready(ready_cb, m);

    /* The xDS server knows snapshots, not the model: it asks model_snapshot for a new
     * stream's first one, and the model hands it each publish (model_on_push below). */
    xds_server_opts xo = {.grpc_addr = f->grpc_addr,
                          .domain = f->domain,
                          .snapshot = model_snapshot_fn,
                          .snapshot_ud = m,
                          .max_connection_age_ns = f->keepalive_max_server_connection_age_ns,
                          .max_connection_age_grace_ns = 10 * 1000000000LL, /* istiod's */
                          .keepalive_time_ns = f->keepalive_interval_ns,
                          .keepalive_timeout_ns = f->keepalive_timeout_ns};
    /* /ready (503 until the model is ready) and the debug endpoints answer from here on,
     * also while start-up waits for the API server below. */
    if (!(http = dbg_server_start(f->http_addr, false)))
        goto out;
    if (strcmp(f->monitoring_addr, f->http_addr) != 0 &&
        !(mon = dbg_server_start(f->monitoring_addr, true)))
        goto out;
    /* The CA: root, TLS port, TokenReview, CreateCertificate.
     * Kube mode: an unreachable API server is waited for (with backoff), like istiod. */
    startup_wait sw = {.sigs = &sigs};
    if (!(pca = pilot_ca_new_wait(f, use_k8s, startup_wait_fn, &sw))) {
        if (sw.stopping)
            rc = 0;
        goto out;
    }
    pilot_ca_xds_opts(pca, &xo);
    xo.mesh_authz = &f->mesh.mesh_authz;         /* trustDomainAliases, extensionProviders */
    xo.mesh_telemetry = &f->mesh.mesh_telemetry; /* access logs, default metrics provider */
    xo.outbound_mode = f->mesh.outbound_mode;    /* outboundTrafficPolicy.mode */
    xo.sidecar_ingress_tls = f->sidecar_ingress_tls;
    xds = xds_server_new(&xo);
    if (!xds) {
        LOG_ERR("default", "cannot create the xDS server");
        goto out;
    }
    pilot_ca_register(pca, xds);
    model_on_push(m, xds_server_on_push, xds);
    /* Mesh config from here on: the --meshConfig file followed (else ConfigMap istio in
     * Kubernetes mode), each good version applied with a full push. */
    const char *sys_ns = getenv("POD_NAMESPACE");
    if (!(mw = pilot_meshwatch_start(f, use_k8s,
                                     sys_ns && *sys_ns ? sys_ns : f->mesh.root_namespace, m, xds)))
        goto out;

    /* The webhooks (/inject, /validate) on --httpsAddr with the CA's serving certificate;
     * in kube mode our webhook configurations' caBundle follows our root. A port that
     * cannot be bound is logged and the rest still serves (unlike istiod, which exits). */
    if (f->https_addr[0]) {
        const char *pod_ns = getenv("POD_NAMESPACE");
        const char *wh_ns = pod_ns && *pod_ns ? pod_ns : f->mesh.root_namespace;
        /* istiod's files (./var/lib/istio/inject/{config,values}) win when present */
        winj = wh_injector_new(wh_ns, f->revision, "./var/lib/istio/inject");
        pilot_meshwatch_set_injector(mw, winj);
        wh_server_opts wo = {
            .addr = f->https_addr,
            .cfg = {.domain = f->domain,
                    .inject = {.cluster_id = f->cluster_id,
                               .trust_domain = f->mesh.trust_domain,
                               .istio_namespace = wh_ns,
                               .cluster_domain = f->domain,
                               .proxy_config = f->mesh.default_config,
                               .revision = f->revision,
                               .native_sidecars = f->native_sidecars},
                    .injector = winj,
                    .ready = ready_cb,
                    .ready_ud = m},
            .cred = pilot_ca_serving_cert,
            .cred_ud = pca,
        };
        wh = wh_server_start(&wo);
        if (use_k8s)
            cab = wh_cabundle_start(pilot_ca_kube_client(pca), f->revision, wh_ns,
                                    pilot_ca_root_pem, pca);
    }
    /* istiod's JWKS resolver: jwksUris learnt from each publish, fetched off the model
     * thread, the keys handed back for the next snapshot. */
    if (!(jf = jwks_fetcher_new(m, NULL)) || jwks_fetcher_start(jf) != 0)
        goto out;
    if (model_start(m) != 0)
        goto out;
    if (xds_server_start(xds) != 0)
        goto out;
    if (pilot_ca_start(pca) != 0)
        goto out;
    if (f->config_dir) {
        cd = cfgdir_new(f->config_dir, wh_injector_sink(winj, model_sink(m)));
        if (!cd || cfgdir_start(cd) != 0) {
            LOG_ERR("default", "--configDir %s: cannot start watching", f->config_dir);
            goto out;
        }
    }
    if (use_k8s) {
        /* The root ConfigMaps are reflected for the CA's distributor, whose sink
         * sits in front of the model's. */
        k8s_config kc = {.kubeconfig = f->kubeconfig, .ca_root_configmaps = true};
        if (winj) {
            kc.extra_configmaps[0].ns = wh_injector_namespace(winj);
            kc.extra_configmaps[0].name = wh_injector_configmap(winj);
        }
        kc.extra_configmaps[1].ns = pilot_meshwatch_configmap(mw, &kc.extra_configmaps[1].name);
        ks = k8s_source_new(
            &kc,
            pilot_meshwatch_sink(mw, wh_injector_sink(winj, pilot_ca_sink(pca, model_sink(m)))));
        if (!ks || k8s_source_start(ks) != 0) {
            LOG_ERR("default", "cannot start the Kubernetes source%s%s",
                    f->kubeconfig ? " for --kubeconfig " : " (in-cluster)",
                    f->kubeconfig ? f->kubeconfig : "");
            goto out;
        }
    }

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_INFO("default", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    /* The HTTP servers first: stopping one waits for its connection threads, so no debug
     * handler still runs on a source, the model or the xDS server freed below. */
    dbg_server_stop(http);
    dbg_server_stop(mon);
    model_debug_unregister_mesh();
    k8s_source_free(ks);
    if (cd)
        cfgdir_free(cd);
    wh_cabundle_stop(cab);
    wh_server_stop(wh);
    if (mw)
        pilot_meshwatch_set_injector(mw, NULL);
    wh_injector_free(winj);   /* after its sources and the server that read it */
    pilot_meshwatch_stop(mw); /* after the sources that call it, before what it applies to */
    /* The model thread may still be debouncing a push: stop it before the server its
     * push callback calls into goes away. */
    model_stop(m);
    jwks_fetcher_free(jf); /* after model_stop (its push callback), before model_free */
    if (xds)
        xds_server_free(xds);
    pilot_ca_free(pca); /* after the server whose handlers use it */
    model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    pilot_flags f;
    char err[512];
    int rc;
    if (flags_parse(argc, argv, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\nRun 'pilot-discovery --help' for usage.\n", err);
        rc = 2;
        goto out;
    }
    switch (f.cmd) {
    case FLAGS_CMD_HELP:
        fputs(flags_usage(), stdout);
        rc = 0;
        break;
    case FLAGS_CMD_VERSION:
        printf("version.BuildInfo{Version:\"%s\", GitRevision:\"%s\", Status:\"Clean\"}\n",
               PILOT_REPORTED_VERSION, PILOT_GIT_REVISION);
        rc = 0;
        break;
    case FLAGS_CMD_REQUEST:
        rc = pilot_request(f.req_method, f.req_path, f.req_body);
        break;
    default:
        rc = run_discovery(&f);
        break;
    }
out:
    flags_free(&f);
    return rc;
}
