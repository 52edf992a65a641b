/* test_yaml: YAML streams to JSON documents (pilot/base/yaml.c). Table-driven: each case is a
 * YAML input and the JSON the documents must print as (compact, joined by '\n'), or the
 * error text that must appear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/base/util.h"
#include "pilot/base/yaml.h"

/* Parses in and prints every document compactly, one per line. Returns the rc. */
static int parse_print(const char *in, size_t len, char **out, char *err, size_t errlen)
{
    cJSON **docs = NULL;
    size_t n = 0;
    strbuf b;
    int rc = yaml_to_json_docs(in, len, &docs, &n, err, errlen);

    strbuf_init(&b, 0);
    strbuf_appends(&b, "");
    for (size_t i = 0; i < n; i++) {
        char *s = cJSON_PrintUnformatted(docs[i]);
        if (i)
            strbuf_appends(&b, "\n");
        strbuf_appends(&b, s);
        free(s);
        cJSON_Delete(docs[i]);
    }
    free(docs);
    *out = strbuf_steal(&b, NULL);
    return rc;
}

typedef struct ycase {
    const char *name;
    const char *in;
    const char *want; /* JSON lines, or NULL when an error is expected */
    const char *err;  /* substring of the expected error */
} ycase;

static const ycase cases[] = {
    /* scalar typing: YAML 1.2 core schema, plus 1.1 leading-zero octal */
    {"ints", "a: 1\nb: -42\nc: +7\nd: 0x1F\ne: 0o17\nf: 0644\ng: 09\nh: 0\n",
     "{\"a\":1,\"b\":-42,\"c\":7,\"d\":31,\"e\":15,\"f\":420,\"g\":9,\"h\":0}", NULL},
    {"floats", "a: 1.5\nb: -0.25\nc: 1e3\nd: .5\ne: 2.\nf: 1.10\n",
     "{\"a\":1.5,\"b\":-0.25,\"c\":1000,\"d\":0.5,\"e\":2,\"f\":1.1}", NULL},
    {"bools core only", "a: true\nb: False\nc: TRUE\nd: yes\ne: no\nf: on\ng: off\n",
     "{\"a\":true,\"b\":false,\"c\":true,\"d\":\"yes\",\"e\":\"no\",\"f\":\"on\",\"g\":\"off\"}",
     NULL},
    {"nulls", "a: null\nb: ~\nc:\nd: Null\ne: NULL\n",
     "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}", NULL},
    {"strings stay strings",
     "a: \"1\"\nb: '3.0'\nc: \"true\"\nd: |\n  x\n  y\ne: >\n  p\n  q\nf: 1.2.3\ng: 0x\nh: 1_000\n"
     "i: .inf\nj: -x\nk: 127.0.0.11\n",
     "{\"a\":\"1\",\"b\":\"3.0\",\"c\":\"true\",\"d\":\"x\\ny\\n\",\"e\":\"p "
     "q\\n\",\"f\":\"1.2.3\","
     "\"g\":\"0x\",\"h\":\"1_000\",\"i\":\".inf\",\"j\":\"-x\",\"k\":\"127.0.0.11\"}",
     NULL},
    {"tags",
     "a: !!str 42\nb: !!int \"42\"\nc: !!float 3\nd: !!bool \"true\"\ne: !!null x\n"
     "f: ! 12\ng: !custom 12\n",
     "{\"a\":\"42\",\"b\":42,\"c\":3,\"d\":true,\"e\":null,\"f\":\"12\",\"g\":12}", NULL},
    {"bad int tag", "a: !!int abc\n", NULL, "line 1 column 4: invalid !!int value \"abc\""},
    {"keys are text", "1: a\ntrue: b\n\"x y\": c\n~: d\n",
     "{\"1\":\"a\",\"true\":\"b\",\"x y\":\"c\",\"~\":\"d\"}", NULL},
    {"sequences and nesting", "a:\n- 1\n- [x, {y: 2}]\n- {}\n- []\n",
     "{\"a\":[1,[\"x\",{\"y\":2}],{},[]]}", NULL},
    /* ':' inside a plain scalar of a flow collection, as Kubernetes' reader takes it */
    {"flow colon ipv6", "addresses: [1.2.3.4, 001:db8::]\n",
     "{\"addresses\":[\"1.2.3.4\",\"001:db8::\"]}", NULL},
    {"flow colon url and block text", "a: [http://x/a, 'q:z']\nb: |\n  [x:y\n",
     "{\"a\":[\"http://x/a\",\"q:z\"],\"b\":\"[x:y\\n\"}", NULL},
    {"duplicate keys: last wins", "a: 1\nb: 2\na: 3\n", "{\"a\":3,\"b\":2}", NULL},
    /* documents */
    {"multi-doc", "a: 1\n---\nb: 2\n---\n- 3\n", "{\"a\":1}\n{\"b\":2}\n[3]", NULL},
    {"empty documents skipped", "---\n---\n# only a comment\n---\na: 1\n---\n~\n...\n", "{\"a\":1}",
     NULL},
    {"empty stream", "", "", NULL},
    {"comments only", "# nothing\n\n", "", NULL},
    {"top-level scalar", "--- hello\n", "\"hello\"", NULL},
    /* anchors, aliases, merges */
    {"alias", "base: &b {x: 1, y: [1, 2]}\ncopy: *b\n",
     "{\"base\":{\"x\":1,\"y\":[1,2]},\"copy\":{\"x\":1,\"y\":[1,2]}}", NULL},
    {"scalar alias", "a: &v hello\nb: *v\n", "{\"a\":\"hello\",\"b\":\"hello\"}", NULL},
    {"alias as key", "a: &k name\n*k : 2\n", "{\"a\":\"name\",\"name\":2}", NULL},
    {"merge keys", "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n  z: 4\n",
     "{\"base\":{\"x\":1,\"y\":2},\"d\":{\"y\":3,\"z\":4,\"x\":1}}", NULL},
    {"merge list: earlier wins", "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n",
     "{\"a\":{\"x\":1},\"b\":{\"x\":2,\"y\":2},\"c\":{\"x\":1,\"y\":2}}", NULL},
    {"anchored loser still aliasable", "a: &x 1\na: 2\nb: *x\n", "{\"a\":2,\"b\":1}", NULL},
    {"anchors are per document", "a: &x 1\n---\nb: *x\n", NULL, "unknown anchor \"x\""},
    {"unknown alias", "a: *nope\n", NULL, "line 1 column 4: unknown anchor"},
    {"merge of a scalar", "a:\n  <<: 3\n", NULL, "merge key value must be a mapping"},
    {"complex key", "? [a, b]\n: 1\n", NULL, "mapping key must be a scalar"},
    /* malformed input: libyaml's problem mark, 1-based */
    {"bad indentation", "a: 1\nb:\n  c: 2\n d: 3\n", NULL, "line 4 column 2:"},
    {"mapping value in scalar", "a: b: c\n", NULL,
     "line 1 column 5: mapping values are not allowed"},
    {"unterminated quote", "a: \"abc\nb: 2\n", NULL, "line 3 column 1:"},
    {"tab indentation", "a:\n\tb: 1\n", NULL, "line 2 column 1:"},
    {"unterminated flow", "a: [1, 2\n", NULL, "line 2 column 1:"},
    /* JSON is YAML */
    {"json input",
     "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"a\": 1.5, \"b\": null,"
     " \"c\": true, \"d\": \"x\\ny\"}]}",
     "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"a\":1.5,\"b\":null,\"c\":true,"
     "\"d\":\"x\\ny\"}]}",
     NULL},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ycase *c = &cases[i];
        char err[256] = "unset";
        char *out = NULL;
        int rc = parse_print(c->in, strlen(c->in), &out, err, sizeof err);
        if (c->want) {
            if (rc != 0 || strcmp(out, c->want) != 0)
                fail_msg("case '%s': rc %d err '%s'\n got: %s\nwant: %s", c->name, rc, err, out,
                         c->want);
        } else {
            if (rc != -1 || !strstr(err, c->err))
                fail_msg("case '%s': rc %d, err '%s', want error containing '%s' (out %s)", c->name,
                         rc, err, c->err, out);
        }
        free(out);
    }
}

/* The classic billion laughs: ten levels of ten aliases each must be refused quickly. */
static void test_billion_laughs(void **state)
{
    (void)state;
    strbuf b;
    char err[256];
    cJSON **docs = (cJSON **)0x1;
    size_t n = 7;

    strbuf_init(&b, 0);
    strbuf_appends(&b, "a0: &a0 [\"lol\"]\n");
    for (int i = 1; i <= 10; i++) {
        strbuf_appendf(&b, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            strbuf_appendf(&b, "%s*a%d", j ? ", " : "", i - 1);
        strbuf_appends(&b, "]\n");
    }
    int64_t t0 = util_now_ns();
    int rc = yaml_to_json_docs(b.data, b.len, &docs, &n, err, sizeof err);
    int64_t dt = util_now_ns() - t0;
    assert_int_equal(rc, -1);
    assert_null(docs);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "alias expansion too large"));
    assert_true(dt < 5LL * 1000 * 1000 * 1000);
    strbuf_free(&b);

    /* a modest amount of aliasing stays allowed: 3 levels of 10 */
    strbuf_init(&b, 0);
    strbuf_appends(&b, "a0: &a0 [\"lol\"]\n");
    for (int i = 1; i <= 3; i++) {
        strbuf_appendf(&b, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            strbuf_appendf(&b, "%s*a%d", j ? ", " : "", i - 1);
        strbuf_appends(&b, "]\n");
    }
    rc = yaml_to_json_docs(b.data, b.len, &docs, &n, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);
    cJSON *a3 = cJSON_GetObjectItemCaseSensitive(docs[0], "a3");
    assert_int_equal(cJSON_GetArraySize(a3), 10);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(a3, 9)), 10);
    cJSON_Delete(docs[0]);
    free(docs);
    strbuf_free(&b);
}

static char *nested(int depth, char open, char close)
{
    char *s = xmalloc((size_t)depth * 2 + 2);
    for (int i = 0; i < depth; i++) {
        s[i] = open;
        s[depth * 2 - 1 - i] = close;
    }
    s[depth * 2] = '\n';
    s[depth * 2 + 1] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    char err[256];
    cJSON **docs = NULL;
    size_t n = 0;

    char *ok = nested(256, '[', ']');
    assert_int_equal(yaml_to_json_docs(ok, strlen(ok), &docs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    cJSON_Delete(docs[0]);
    free(docs);
    free(ok);

    char *deep = nested(257, '[', ']');
    assert_int_equal(yaml_to_json_docs(deep, strlen(deep), &docs, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting too deep"));
    assert_non_null(strstr(err, "line 1 column 257"));
    free(deep);

    /* very deep input (libyaml itself would recurse/grow): refused, no crash */
    char *huge = nested(100000, '[', ']');
    assert_int_equal(yaml_to_json_docs(huge, strlen(huge), &docs, &n, err, sizeof err), -1);
    free(huge);

    /* an alias cannot be used to go past the limit either */
    strbuf b;
    strbuf_init(&b, 0);
    strbuf_appends(&b, "a: &d ");
    char *inner = nested(200, '[', ']');
    strbuf_appends(&b, inner);
    strbuf_appends(&b, "b: ");
    char *outer = nested(100, '[', ']');
    outer[100] = '\0'; /* just the openers, then the alias, then the closers */
    strbuf_appends(&b, outer);
    strbuf_appends(&b, "*d ");
    for (int i = 0; i < 100; i++)
        strbuf_appends(&b, "]");
    strbuf_appends(&b, "\n");
    assert_int_equal(yaml_to_json_docs(b.data, b.len, &docs, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting too deep"));
    free(inner);
    free(outer);
    strbuf_free(&b);
}

/* A realistic manifest: Kubernetes field shapes come out typed as kubectl would. */
static void test_manifest(void **state)
{
    (void)state;
    static const char in[] = "apiVersion: v1\n"
                             "kind: Service\n"
                             "metadata:\n"
                             "  name: web\n"
                             "  labels: {app: web, version: \"1.0\"}\n"
                             "spec:\n"
                             "  ports:\n"
                             "  - name: http-web\n"
                             "    port: 8080\n"
                             "    targetPort: 9080\n"
                             "  selector:\n"
                             "    app: web\n";
    char err[256];
    cJSON **docs = NULL;
    size_t n = 0;
    assert_int_equal(yaml_to_json_docs(in, sizeof in - 1, &docs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    cJSON *port =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(docs[0], "spec"), "ports"),
                           0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(port, "port")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(port, "port")->valueint, 8080);
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(docs[0], "metadata"), "labels");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "version")->valuestring, "1.0");
    cJSON_Delete(docs[0]);
    free(docs);
}

/* Errors leave nothing allocated for the caller and tolerate a zero-length err buffer. */
static void test_error_contract(void **state)
{
    (void)state;
    cJSON **docs = (cJSON **)0x1;
    size_t n = 9;
    static const char bad[] = "a: 1\n---\nb: [\n";
    assert_int_equal(yaml_to_json_docs(bad, sizeof bad - 1, &docs, &n, NULL, 0), -1);
    assert_null(docs);
    assert_int_equal(n, 0);
    /* invalid UTF-8 is refused by libyaml with a position */
    static const char binary[] = "a: \xff\xfe\n";
    char err[256];
    assert_int_equal(yaml_to_json_docs(binary, sizeof binary - 1, &docs, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1 column"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_error_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
