/* test_http: the debug and monitoring servers on 127.0.0.1:0, fetched with libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "pilot_version.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"
#include "pilot/model/debug_model.h"
#include "pilot/model/model.h"
#include "pilot/obs/debug.h"

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    strbuf_append(ud, p, sz * n);
    return sz * n;
}

/* GETs path; returns the status and sets *body (caller frees). */
static long get(int port, const char *path, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    strbuf b;
    strbuf_init(&b, 0);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    strbuf_append(&b, "", 0);
    *body = strbuf_steal(&b, NULL);
    if (!*body)
        *body = xstrdup("");
    return status;
}

static bool ready_fn(void *ud)
{
    return model_ready(ud);
}

static void echo(void *ud, const dbg_request *req, dbg_response *resp)
{
    (void)ud;
    const char *v = dbg_arg(req, "proxyID");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", dbg_path(req));
    if (v)
        cJSON_AddStringToObject(o, "proxyID", v);
    cJSON_AddBoolToObject(o, "flag", dbg_arg(req, "flag") != NULL);
    dbg_send_json(req, resp, o);
    cJSON_Delete(o);
}

static void test_servers(void **state)
{
    (void)state;
    model_opts mo = {.domain = "cluster.local",
                     .debounce_after_ns = 1000000,
                     .debounce_max_ns = 100000000,
                     .nsources = 1};
    model *m = model_new(&mo);
    assert_non_null(m);
    model_debug_register(m);
    dbg_register("/debug/echo", "Echoes its arguments", echo, NULL);
    dbg_set_ready(ready_fn, m);
    assert_int_equal(model_start(m), 0);
    dbg_server *http = dbg_server_start("127.0.0.1:0", false);
    dbg_server *mon = dbg_server_start("127.0.0.1:0", true);
    assert_non_null(http);
    assert_non_null(mon);
    int hp = dbg_server_port(http), mp = dbg_server_port(mon);
    assert_true(hp > 0 && mp > 0 && hp != mp);
    assert_null(dbg_server_start("127.0.0.1:notaport", false));
    assert_null(dbg_server_start("nocolon", false));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", hp);
    assert_null(dbg_server_start(addr, false)); /* in use */

    char *body;
    assert_int_equal(get(hp, "/ready", &body), 503);
    free(body);
    assert_int_equal(get(hp, "/debug/configz", &body), 503); /* no snapshot yet */
    free(body);

    cJSON *vs =
        cJSON_Parse("{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":"
                    "\"VirtualService\",\"metadata\":{\"name\":\"r\",\"namespace\":"
                    "\"default\",\"labels\":{\"app\":\"r\"}},\"spec\":{\"hosts\":"
                    "[\"r\"],\"http\":[{\"route\":[{\"destination\":{\"host\":\"r\"}}]}]}}");
    source_sink sk = model_sink(m);
    sk.event(sk.ud, SOURCE_EV_UPSERT, vs, "t.yaml");
    sk.synced(sk.ud, "t");
    model_flush(m);
    assert_true(model_ready(m));

    assert_int_equal(get(hp, "/ready", &body), 200);
    assert_string_equal(body, "");
    free(body);

    assert_int_equal(get(mp, "/version", &body), 200);
    char want[128];
    snprintf(want, sizeof(want), "%s-%s-Clean", PILOT_REPORTED_VERSION, PILOT_GIT_REVISION);
    assert_string_equal(body, want);
    free(body);

    /* /debug/list: a JSON array of the registered paths, on both servers. */
    int ports[] = {hp, mp};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(ports[i], "/debug/list", &body), 200);
        cJSON *arr = cJSON_Parse(body);
        assert_true(cJSON_IsArray(arr));
        bool configz = false, echo_seen = false;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            configz |= strcmp(it->valuestring, "/debug/configz") == 0;
            echo_seen |= strcmp(it->valuestring, "/debug/echo") == 0;
        }
        assert_true(configz && echo_seen);
        cJSON_Delete(arr);
        free(body);
    }

    assert_int_equal(get(hp, "/debug", &body), 200);
    assert_non_null(strstr(body, "Echoes its arguments"));
    assert_non_null(strstr(body, "href=\"/debug/registryz\""));
    free(body);

    /* configz: Kubernetes-shaped, compact by default, indented with ?pretty. */
    assert_int_equal(get(hp, "/debug/configz", &body), 200);
    assert_null(strchr(body, '\n'));
    cJSON *cz = cJSON_Parse(body);
    assert_int_equal(cJSON_GetArraySize(cz), 1);
    const cJSON *o = cJSON_GetArrayItem(cz, 0);
    assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, "VirtualService");
    const cJSON *md = cJSON_GetObjectItem(o, "metadata");
    assert_string_equal(cJSON_GetObjectItem(md, "name")->valuestring, "r");
    assert_string_equal(cJSON_GetObjectItem(md, "namespace")->valuestring, "default");
    assert_non_null(cJSON_GetObjectItem(md, "labels"));
    assert_non_null(cJSON_GetObjectItem(md, "generation"));
    assert_non_null(cJSON_GetObjectItem(o, "spec"));
    cJSON_Delete(cz);
    free(body);
    assert_int_equal(get(hp, "/debug/configz?pretty", &body), 200);
    assert_non_null(strchr(body, '\n'));
    free(body);

    assert_int_equal(get(hp, "/debug/echo?proxyID=sleep.default&flag", &body), 200);
    cJSON *e = cJSON_Parse(body);
    assert_string_equal(cJSON_GetObjectItem(e, "proxyID")->valuestring, "sleep.default");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "flag")));
    assert_string_equal(cJSON_GetObjectItem(e, "path")->valuestring, "/debug/echo");
    cJSON_Delete(e);
    free(body);

    assert_int_equal(get(hp, "/debug/registryz", &body), 200);
    assert_string_equal(body, "[]");
    free(body);
    assert_int_equal(get(hp, "/debug/endpointShardz", &body), 200);
    assert_string_equal(body, "{}");
    free(body);

    /* /metrics only on the monitoring address. */
    assert_int_equal(get(mp, "/metrics", &body), 200);
    assert_non_null(strstr(body, "\npilot_virt_services 1\n"));
    assert_non_null(strstr(body, "# TYPE istiod_uptime_seconds gauge"));
    free(body);
    assert_int_equal(get(hp, "/metrics", &body), 404);
    free(body);

    assert_int_equal(get(hp, "/nope", &body), 404);
    free(body);
    assert_int_equal(get(mp, "/debug/nope", &body), 404);
    free(body);

    dbg_server_stop(http);
    dbg_server_stop(mon);
    dbg_set_ready(NULL, NULL);
    model_free(m);
}

int main(void)
{
    char err[128];
    log_configure("default:error", err, sizeof(err));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_servers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
