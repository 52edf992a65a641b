/* authz_dump: the authorization filters xds/gen/authz.c builds for one proxy, written for
 * authz_golden.py.
 * Usage: authz_dump http|tcp POLICIES.yaml OUTDIR [TRUST_DOMAIN [MESH_CONFIG.yaml]]
 * The proxy is Istio's builder-test node: namespace foo, labels app=httpbin,version=v1.
 * MESH_CONFIG is read as --meshConfig is (pilot/flags.c): its trustDomainAliases and
 * extensionProviders reach the generator. TRUST_DOMAIN "" = the default.
 * Writes OUTDIR/<i>.bin (an HttpFilter, or a listener Filter for tcp) and prints how many. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_fixture.h"
#include "pilot/base/util.h"
#include "pilot/flags.h"
#include "xds/gen/gen_internal.h"

static int write_msg(const char *dir, size_t i, const ProtobufCMessage *m)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%zu.bin", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(m, buf);
    size_t w = fwrite(buf, 1, len, f);
    free(buf);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "http") != 0 && strcmp(argv[1], "tcp") != 0)) {
        fprintf(stderr, "usage: authz_dump http|tcp POLICIES.yaml OUTDIR [TRUST_DOMAIN "
                        "[MESH_CONFIG.yaml]]\n");
        return 2;
    }
    pilot_flags fl;
    char ferr[512];
    char *fargv[] = {"pilot-discovery", "discovery", "--meshConfig", argc > 5 ? argv[5] : ""};
    if (flags_parse(4, fargv, &fl, ferr, sizeof ferr) != 0) {
        fprintf(stderr, "authz_dump: %s\n", ferr);
        flags_free(&fl);
        return 1;
    }
    mesh_snapshot *s = fx_snapshot_files(argv[2], NULL);
    if (!s) {
        fprintf(stderr, "authz_dump: cannot read %s\n", argv[2]);
        flags_free(&fl);
        return 1;
    }
    xds_proxy *p = fx_proxy(XDS_FLAVOUR_ENVOY_SIDECAR, "foo", "10.0.0.1", "app=httpbin,version=v1");
    gen_arena a = {0};
    gen_view v = {.ns = p->ns, .labels = p->labels};
    gen_ctx c = {.a = &a,
                 .p = &v,
                 .s = s,
                 .trust_domain = argc > 4 && argv[4][0] ? argv[4] : NULL,
                 .mesh_authz = &fl.mesh.mesh_authz};
    size_t n = 0;
    int rc = 0;
    if (!strcmp(argv[1], "http")) {
        gen_hfilter **f = NULL;
        gen_authz_http_filters(&c, &f, &n);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = write_msg(argv[3], i, &f[i]->base);
    } else {
        Envoy__Config__Listener__V3__Filter **f = NULL;
        gen_authz_network_filters(&c, &f, &n);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = write_msg(argv[3], i, &f[i]->base);
    }
    printf("%zu\n", n);
    gen_arena_free(&a);
    xds_proxy_free(p);
    mesh_snapshot_release(s);
    flags_free(&fl);
    return rc ? 1 : 0;
}
