/* request: `pilot-discovery request METHOD PATH [BODY]`, istiod's debug client. It asks the
 * monitoring port on loopback (127.0.0.1:15014, as istiod hard-codes it), so an operator
 * with a shell in the pod reaches the debug endpoints without port-forwarding; istioctl 1.5's
 * proxy-status ran exactly `pilot-discovery request GET /debug/syncz` in the pod.
 */
#include "pilot/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "pilot/base/util.h"

#define REQUEST_ADDR "127.0.0.1:15014"
#define REQUEST_TIMEOUT_S 60L
#define REQUEST_MAX_BODY (256u << 20) /* a config dump of a large mesh fits */

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    strbuf *b = ud;
    return strbuf_append(b, p, size * n) == 0 ? size * n : 0;
}

int pilot_request(const char *method, const char *path, const char *body)
{
    int rc = 1;
    strbuf resp;
    strbuf_init(&resp, REQUEST_MAX_BODY);
    while (*path == '/')
        path++;
    char *url = xasprintf("http://" REQUEST_ADDR "/%s", path);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "Error: cannot create an HTTP client\n");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    if (body && *body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "Error: %s %s: %s\n", method, url, curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    const char *text = resp.data ? resp.data : "";
    /* istiod's rule: a 404 prints its body like a success; other errors fail with it */
    if (status > 399 && status != 404) {
        fprintf(stderr, "Error: received unsuccessful status code %ld: %s\n", status, text);
        goto out;
    }
    printf("%s\n", text);
    rc = 0;
out:
    if (h)
        curl_easy_cleanup(h);
    curl_global_cleanup();
    free(url);
    strbuf_free(&resp);
    return rc;
}
