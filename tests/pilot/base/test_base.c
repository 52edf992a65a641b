/* Unit tests for pilot/base: durations, bounded buffers, log level parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pilot/base/log.h"
#include "pilot/base/util.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        int64_t ns;
    } cases[] = {
        {"100ms", 0, 100000000LL},
        {"10s", 0, 10000000000LL},
        {"1.5s", 0, 1500000000LL},
        {"1h30m", 0, 5400000000000LL},
        {"2m3s", 0, 123000000000LL},
        {"250us", 0, 250000LL},
        {"7ns", 0, 7},
        {"0", 0, 0},
        {"0s", 0, 0},
        {"", -1, 0},
        {"10", -1, 0},
        {"-1s", -1, 0},
        {"s", -1, 0},
        {"1x", -1, 0},
        {"1s garbage", -1, 0},
        {"99999999999h", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -42;
        int rc = util_parse_duration(cases[i].in, &v);
        if (rc != cases[i].rc)
            fail_msg("duration '%s': rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && v != cases[i].ns)
            fail_msg("duration '%s': %lld ns, want %lld", cases[i].in, (long long)v,
                     (long long)cases[i].ns);
    }
}

static void test_strbuf_limit(void **state)
{
    (void)state;
    strbuf b;
    strbuf_init(&b, 8);
    assert_int_equal(strbuf_appends(&b, "abcd"), 0);
    assert_int_equal(strbuf_appendf(&b, "%d", 123), 0);
    assert_string_equal(b.data, "abcd123");
    /* one past the maximum is refused and leaves the buffer as it was */
    assert_int_equal(strbuf_appends(&b, "xy"), -1);
    assert_string_equal(b.data, "abcd123");
    assert_int_equal(strbuf_appends(&b, "z"), 0);
    assert_int_equal(b.len, 8);
    size_t len;
    char *s = strbuf_steal(&b, &len);
    assert_int_equal(len, 8);
    assert_string_equal(s, "abcd123z");
    free(s);
    assert_null(b.data);
    strbuf_free(&b);
}

static void test_log_levels(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(log_configure("default:warn,ads:debug", err, sizeof(err)), 0);
    assert_true(log_enabled("ads", LOG_DEBUG));
    assert_false(log_enabled("model", LOG_INFO));
    assert_true(log_enabled("model", LOG_WARN));
    assert_int_equal(log_configure("debug", err, sizeof(err)), 0);
    assert_true(log_enabled("model", LOG_DEBUG));
    assert_int_equal(log_configure("ads:loud", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "loud"));
    assert_int_equal(log_configure("info", err, sizeof(err)), 0);
}

static void test_prefix_suffix_hash(void **state)
{
    (void)state;
    assert_true(util_has_suffix("a.yaml", ".yaml"));
    assert_false(util_has_suffix("yaml", ".yaml"));
    assert_true(util_has_prefix("outbound|80||x", "outbound|"));
    assert_int_not_equal(util_hash64("a", 1, 0), util_hash64("b", 1, 0));
    assert_int_equal(util_hash64("abc", 3, 7), util_hash64("abc", 3, 7));
    char t[32];
    util_format_time(0, t, sizeof(t));
    assert_string_equal(t, "1970-01-01T00:00:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_strbuf_limit),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_prefix_suffix_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
