/* ca_bench: how fast the built-in CA signs workload certificates.
 *
 * Drives ca_service_create_certificate (protobuf unpack, authentication, CSR parse and
 * signature check, issuing, PEM and protobuf encoding: everything but gRPC transport) with
 * pre-generated EC P-256 CSRs, once with an RSA-2048 root and once with an ECDSA P-256
 * root, on 1 and 2 threads. Prints certificates per second and p50/p99 latency.
 *
 * Usage: ca_bench [-n calls_per_run] [-t max_threads]
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.pb-c.h"
#include "certs/ca.h"
#include "certs/ca_service.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

#define NCSR 64

typedef struct packed {
    uint8_t *buf;
    size_t len;
} packed;

static packed reqs[NCSR];

static char *make_csr(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *r = X509_REQ_new();
    X509_REQ_set_version(r, 0);
    X509_REQ_set_pubkey(r, k);
    X509_REQ_sign(r, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = xstrndup(p, (size_t)n);
    BIO_free(b);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    return out;
}

typedef struct worker {
    ca_service *svc;
    int calls;
    int64_t *lat;
    int64_t cpu_ns; /* this thread's CPU time over the run */
    int failures;
} worker;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *run(void *arg)
{
    worker *w = arg;
    const char *sans[] = {"spiffe://cluster.local/ns/bench/sa/client"};
    ca_caller auth = {.peer = "bench", .peer_uri_sans = sans, .npeer_uri_sans = 1};
    int64_t cpu0 = thread_cpu_ns();
    for (int i = 0; i < w->calls; i++) {
        packed *p = &reqs[i % NCSR];
        uint8_t *resp = NULL;
        size_t rlen = 0;
        char *msg = NULL;
        int64_t t0 = util_now_ns();
        int code = ca_service_create_certificate(w->svc, &auth, p->buf, p->len, &resp, &rlen, &msg);
        w->lat[i] = util_now_ns() - t0;
        if (code != 0) {
            w->failures++;
        }
        free(resp);
        free(msg);
    }
    w->cpu_ns = thread_cpu_ns() - cpu0;
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int bench(ca_service *svc, const char *root, int threads, int calls, bool quiet)
{
    worker w[8];
    pthread_t th[8];
    int per = calls / threads;
    int64_t *all = xcalloc((size_t)per * (size_t)threads, sizeof(int64_t));
    int64_t t0 = util_now_ns();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.svc = svc, .calls = per, .lat = all + (size_t)i * (size_t)per};
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    int failures = 0;
    int64_t cpu = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
        cpu += w[i].cpu_ns;
    }
    double wall = (double)(util_now_ns() - t0) / 1e9;
    size_t n = (size_t)per * (size_t)threads;
    qsort(all, n, sizeof(int64_t), cmp_i64);
    if (!quiet) {
        /* CPU time per certificate is what `openssl speed` reports too (it counts user
         * time), so the two compare even on a busy machine; wall-clock rates and
         * percentiles include waiting for a core. */
        printf("%-14s threads=%d  certs=%zu  %6.0f certs/s  p50 %6.3f ms  p99 %6.3f ms  "
               "cpu %6.3f ms/cert (%5.0f certs/s per core)%s\n",
               root, threads, n, (double)n / wall, (double)all[n / 2] / 1e6,
               (double)all[(n * 99) / 100] / 1e6, (double)cpu / (double)n / 1e6,
               (double)n * 1e9 / (double)cpu, failures ? "  FAILURES" : "");
    }
    free(all);
    return failures;
}

int main(int argc, char **argv)
{
    int calls = 2000, maxthreads = 2, opt;
    while ((opt = getopt(argc, argv, "n:t:")) != -1) {
        if (opt == 'n') {
            calls = atoi(optarg);
        } else if (opt == 't') {
            maxthreads = atoi(optarg);
        } else {
            fprintf(stderr, "usage: %s [-n calls] [-t max_threads]\n", argv[0]);
            return 2;
        }
    }
    if (calls < 100 || maxthreads < 1 || maxthreads > 8) {
        fprintf(stderr, "need -n >= 100 and 1 <= -t <= 8\n");
        return 2;
    }
    char lerr[64];
    log_configure("ca:error", lerr, sizeof(lerr));
    for (int i = 0; i < NCSR; i++) {
        char *csr = make_csr();
        Istio__V1__Auth__IstioCertificateRequest r =
            ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
        r.csr = csr;
        reqs[i].len = istio__v1__auth__istio_certificate_request__get_packed_size(&r);
        reqs[i].buf = xmalloc(reqs[i].len);
        istio__v1__auth__istio_certificate_request__pack(&r, reqs[i].buf);
        free(csr);
    }
    int failures = 0;
    const struct {
        ca_key_type kt;
        const char *name;
    } roots[] = {{CA_KEY_RSA2048, "RSA-2048 root"}, {CA_KEY_EC_P256, "P-256 root"}};
    for (size_t r = 0; r < 2; r++) {
        ca_opts o = {.cacerts_dir = "", .key_type = roots[r].kt};
        ca *c = NULL;
        char err[256];
        if (ca_new(&o, &c, err, sizeof(err)) != CA_OK) {
            fprintf(stderr, "ca_new: %s\n", err);
            return 1;
        }
        ca_service *svc = ca_service_new(c, NULL, NULL);
        bench(svc, roots[r].name, 1, 200, true); /* warm-up */
        for (int t = 1; t <= maxthreads; t++) {
            failures += bench(svc, roots[r].name, t, calls, false);
        }
        ca_service_free(svc);
        ca_free(c);
    }
    for (int i = 0; i < NCSR; i++) {
        free(reqs[i].buf);
    }
    return failures ? 1 : 0;
}
