/* test_debug_auth: internal calls of the debug table (dbg_call, what debug over xDS uses)
 * and istiod's rule for callers off loopback (dbg_set_authenticator, pilot/obs/debug.h).
 *
 * The off-loopback cases need a non-loopback IPv4 address of this host (getifaddrs): the
 * server listens on every interface and libcurl connects to that address, so the server
 * sees a real non-loopback peer. Without one those cases are skipped (said in the output).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "pilot/base/util.h"
#include "pilot/obs/debug.h"

/* Echoes the arguments it was asked about, so a test sees what dbg_arg decoded. */
static void echo_handler(void *ud, const dbg_request *req, dbg_response *resp)
{
    (void)ud;
    const char *a = dbg_arg(req, "proxyID");
    const char *b = dbg_arg(req, "flag");
    const char *c = dbg_arg(req, "absent");
    strbuf_appendf(&resp->body, "%s|%s|%s|%s", dbg_path(req), a ? a : "(null)", b ? b : "(null)",
                   c ? c : "(null)");
}

static void call(const char *target, int *status, char *out, size_t outlen)
{
    dbg_response resp = {.status = 200};
    strbuf_init(&resp.body, 1 << 20);
    dbg_call(target, &resp);
    *status = resp.status;
    snprintf(out, outlen, "%s", resp.body.data ? resp.body.data : "");
    strbuf_free(&resp.body);
}

static void test_dbg_call(void **state)
{
    (void)state;
    static int ud;
    char body[512];
    int st;
    dbg_register("/debug/echo", "echo", echo_handler, &ud);
    call("/debug/echo?proxyID=a%2Eb%20c+d&flag", &st, body, sizeof body);
    assert_int_equal(st, 200);
    assert_string_equal(body, "/debug/echo|a.b c d||(null)");
    call("/debug/echo", &st, body, sizeof body);
    assert_string_equal(body, "/debug/echo|(null)|(null)|(null)");
    /* a malformed escape stays as written; of a repeated key the first wins, as over HTTP */
    call("/debug/echo?proxyID=%zz&proxyID=second", &st, body, sizeof body);
    assert_string_equal(body, "/debug/echo|%zz|(null)|(null)");
    /* only the table answers: no /metrics, /ready or index through internal calls */
    call("/metrics", &st, body, sizeof body);
    assert_int_equal(st, 404);
    call("/ready", &st, body, sizeof body);
    assert_int_equal(st, 404);
    call("/debug/nothing-here", &st, body, sizeof body);
    assert_int_equal(st, 404);
    dbg_unregister("/debug/echo", &ud);
    call("/debug/echo?proxyID=x", &st, body, sizeof body);
    assert_int_equal(st, 404);
}

static bool loopback(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return dbg_addr_is_loopback((struct sockaddr *)&ss);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(loopback("127.0.0.1"));
    assert_true(loopback("127.9.8.7"));
    assert_true(loopback("::1"));
    assert_true(loopback("::ffff:127.0.0.1"));
    assert_false(loopback("10.0.0.1"));
    assert_false(loopback("128.0.0.1"));
    assert_false(loopback("::ffff:10.0.0.1"));
    assert_false(loopback("2001:db8::1"));
    assert_false(loopback("::"));
    assert_false(dbg_addr_is_loopback(NULL));
}

/* ---- off loopback ---------------------------------------------------------------------- */

static atomic_int reviews;

/* Accepts the token "good" only, as a TokenReview would accept a valid JWT. */
static int fake_review(void *ud, const char *token, char *err, size_t errlen)
{
    (void)ud;
    atomic_fetch_add(&reviews, 1);
    if (strcmp(token, "good") == 0)
        return 0;
    snprintf(err, errlen, "token refused");
    return -1;
}

static bool local_ipv4(char *out, size_t outlen)
{
    struct ifaddrs *ifs = NULL, *i;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0)
            continue;
        if (dbg_addr_is_loopback(i->ifa_addr))
            continue;
        found = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
                          (socklen_t)outlen) != NULL;
    }
    freeifaddrs(ifs);
    return found;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static long get(const char *host, int port, const char *path, const char *token)
{
    char url[256], hdr[128];
    long code = -1;
    snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    if (token != NULL) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static void test_off_loopback(void **state)
{
    (void)state;
    static int ud;
    char ip[64];
    if (!local_ipv4(ip, sizeof ip)) {
        print_message("skip: no non-loopback IPv4 address on this host\n");
        return;
    }
    dbg_register("/debug/echo", "echo", echo_handler, &ud);
    dbg_server *s = dbg_server_start("0.0.0.0:0", true);
    assert_non_null(s);
    int port = dbg_server_port(s);

    /* no authenticator: loopback served, everything else 401 but the open pages */
    assert_int_equal(get("127.0.0.1", port, "/debug/echo", NULL), 200);
    assert_int_equal(get(ip, port, "/debug/echo", NULL), 401);
    assert_int_equal(get(ip, port, "/debug/echo", "good"), 401);
    assert_int_equal(get(ip, port, "/debug/list", NULL), 401);
    assert_int_equal(get(ip, port, "/debug", NULL), 200);
    assert_int_equal(get(ip, port, "/version", NULL), 200);
    assert_int_equal(get(ip, port, "/metrics", NULL), 200);

    dbg_set_authenticator(fake_review, &ud);
    atomic_store(&reviews, 0);
    assert_int_equal(get(ip, port, "/debug/echo", "good"), 200);
    assert_int_equal(get(ip, port, "/debug/echo", "bad"), 401);
    assert_int_equal(get(ip, port, "/debug/echo", NULL), 401);          /* nothing to review */
    assert_int_equal(get("127.0.0.1", port, "/debug/echo", NULL), 200); /* no review */
    assert_int_equal(atomic_load(&reviews), 2);
    dbg_set_authenticator(NULL, NULL);
    assert_int_equal(get(ip, port, "/debug/echo", "good"), 401);
    assert_int_equal(atomic_load(&reviews), 2);

    dbg_server_stop(s);
    dbg_unregister("/debug/echo", &ud);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dbg_call),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_off_loopback),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
