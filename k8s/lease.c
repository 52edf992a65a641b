/* lease: leader election on a coordination.k8s.io/v1 Lease with client-go's semantics
 * (tools/leaderelection): a candidate takes the Lease when nobody holds it or when the
 * record it last saw has not changed for the record's leaseDurationSeconds, measured on its
 * own clock from when it saw it (so clocks need not agree); the holder renews every retry
 * period and steps down when no renewal succeeded for the renew deadline (shorter than the
 * lease duration, so it stops before anyone may take over); on stop it releases the Lease
 * (holder "", duration 1 s) as istiod does (ReleaseOnCancel).
 *
 * Fencing: a guarded write first calls k8s_lease_fence, which says yes only while the
 * renew deadline has not passed since the last renewal and the Lease was confirmed, by an
 * update carrying the resourceVersion we last wrote, within the last second. A leader that
 * was stopped (SIGSTOP, a long GC-like pause, a partition) past its lease therefore fails
 * the fence on its first write after it resumes: its clock says the deadline passed, and
 * its stale resourceVersion gets a 409 if someone else took the Lease meanwhile.
 *
 * Threads: one thread per election runs the acquire/renew loop. `op_mu` serialises every
 * API call on the Lease (the loop's and the fence's); `mu` guards the state below and is
 * never held across a request. The change callback runs on the election thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/k8s.h"
#include "pilot/base/log.h"
#include "pilot/base/util.h"

#define LEASE_LOG "leader"
#define LEASE_FENCE_FRESH_NS 1000000000LL /* a confirmation this recent needs no new one */

struct k8s_lease {
    k8s_client *kc;
    char *ns, *name, *identity;
    int64_t duration_ns, renew_deadline_ns, retry_ns;
    k8s_lease_fn on_change;
    void *ud;
    pthread_t thread;
    bool started;

    pthread_mutex_t op_mu; /* one Lease request at a time */

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    bool stop;
    bool leading;
    int64_t renewed_ns;   /* monotonic time of our last successful acquire or renew */
    int64_t confirmed_ns; /* same, for the fence's freshness */
    char *rv;             /* resourceVersion of the record we last wrote or saw */
    char *seen;           /* the record we last saw (holder + renewTime), to detect change */
    int64_t seen_ns;      /* monotonic time it was first seen */
    int64_t seen_dur_ns;  /* its leaseDurationSeconds */
    int32_t transitions;  /* its leaseTransitions */
    char *acquire_time;   /* its acquireTime (kept on renewals) */
};

/* MicroTime: RFC 3339 with microseconds, UTC. */
static void micro_time(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* The Lease as we write it: us holding it since acquire (now when we take it over). */
static cJSON *lease_obj(const k8s_lease *l, const char *rv, const char *acquire,
                        int32_t transitions, bool release)
{
    char now[40];
    micro_time(now, sizeof(now));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(o, "kind", "Lease");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", l->name);
    cJSON_AddStringToObject(md, "namespace", l->ns);
    if (rv)
        cJSON_AddStringToObject(md, "resourceVersion", rv);
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "holderIdentity", release ? "" : l->identity);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
                            release ? 1 : (double)((l->duration_ns + 999999999) / 1000000000));
    cJSON_AddStringToObject(spec, "acquireTime", acquire ? acquire : now);
    cJSON_AddStringToObject(spec, "renewTime", now);
    cJSON_AddNumberToObject(spec, "leaseTransitions", transitions);
    return o;
}

/* Remembers the server's copy (mu held). */
static void note_record(k8s_lease *l, const cJSON *obj, int64_t now)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const char *holder = jstr(spec, "holderIdentity");
    const char *renew = jstr(spec, "renewTime");
    char *rec = xasprintf("%s|%s", holder ? holder : "", renew ? renew : "");
    if (!l->seen || strcmp(l->seen, rec) != 0) {
        free(l->seen);
        l->seen = rec;
        l->seen_ns = now;
    } else {
        free(rec);
    }
    int64_t dur = jint(spec, "leaseDurationSeconds");
    l->seen_dur_ns = (dur > 0 ? dur : 1) * 1000000000LL;
    l->transitions = (int32_t)jint(spec, "leaseTransitions");
    free(l->acquire_time);
    l->acquire_time = jstr(spec, "acquireTime") ? xstrdup(jstr(spec, "acquireTime")) : NULL;
    free(l->rv);
    l->rv = jstr(md, "resourceVersion") ? xstrdup(jstr(md, "resourceVersion")) : NULL;
}

/* One round of client-go's tryAcquireOrRenew (op_mu held). True when we hold the Lease. */
static bool try_acquire_or_renew(k8s_lease *l)
{
    char err[512];
    cJSON *cur = NULL, *out = NULL, *want = NULL;
    bool ok = false;
    int64_t now = util_now_ns();
    int rc = k8s_get(l->kc, K8S_LEASE, l->ns, l->name, &cur, err, sizeof(err));
    if (rc == K8S_ENOTFOUND) {
        want = lease_obj(l, NULL, NULL, 0, false);
        rc = k8s_create(l->kc, K8S_LEASE, l->ns, want, &out, err, sizeof(err));
        if (rc != 0) {
            LOG_DEBUG(LEASE_LOG, "%s/%s: create: %s", l->ns, l->name, err);
            goto out;
        }
        pthread_mutex_lock(&l->mu);
        note_record(l, out, now);
        pthread_mutex_unlock(&l->mu);
        ok = true;
        goto out;
    }
    if (rc != 0) {
        LOG_DEBUG(LEASE_LOG, "%s/%s: get: %s", l->ns, l->name, err);
        goto out;
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cur, "spec");
    const char *holder = jstr(spec, "holderIdentity");
    bool mine = holder && strcmp(holder, l->identity) == 0;
    pthread_mutex_lock(&l->mu);
    note_record(l, cur, now);
    bool valid = now < l->seen_ns + l->seen_dur_ns;
    bool was_leading = l->leading;
    char *rv = l->rv ? xstrdup(l->rv) : NULL;
    char *acq = mine && l->acquire_time ? xstrdup(l->acquire_time) : NULL;
    int32_t tr = l->transitions + (mine ? 0 : 1);
    pthread_mutex_unlock(&l->mu);
    if (holder && *holder && !mine && valid) {
        free(rv);
        free(acq);
        if (was_leading)
            LOG_WARN(LEASE_LOG, "%s/%s: now held by %s", l->ns, l->name, holder);
        goto out;
    }
    if (!mine && was_leading) {
        /* Someone took it and let it go meanwhile: we were not leading throughout. */
        free(rv);
        free(acq);
        goto out;
    }
    want = lease_obj(l, rv, acq, tr, false);
    free(rv);
    free(acq);
    rc = k8s_update(l->kc, K8S_LEASE, l->ns, want, &out, err, sizeof(err));
    if (rc != 0) {
        LOG_DEBUG(LEASE_LOG, "%s/%s: update: %s", l->ns, l->name, err);
        goto out;
    }
    pthread_mutex_lock(&l->mu);
    note_record(l, out, now);
    pthread_mutex_unlock(&l->mu);
    ok = true;
out:
    cJSON_Delete(cur);
    cJSON_Delete(out);
    cJSON_Delete(want);
    return ok;
}

/* Renewal only, with the resourceVersion we last wrote (op_mu held): a 409 means the
 * record moved under us. */
static bool renew(k8s_lease *l)
{
    char err[512];
    cJSON *out = NULL;
    pthread_mutex_lock(&l->mu);
    cJSON *want = lease_obj(l, l->rv, l->acquire_time, l->transitions, false);
    pthread_mutex_unlock(&l->mu);
    int64_t now = util_now_ns();
    int rc = k8s_update(l->kc, K8S_LEASE, l->ns, want, &out, err, sizeof(err));
    cJSON_Delete(want);
    if (rc != 0) {
        LOG_DEBUG(LEASE_LOG, "%s/%s: renew: %s", l->ns, l->name, err);
        return false;
    }
    pthread_mutex_lock(&l->mu);
    note_record(l, out, now);
    pthread_mutex_unlock(&l->mu);
    cJSON_Delete(out);
    return true;
}

static void set_leading(k8s_lease *l, bool leading, int64_t at)
{
    pthread_mutex_lock(&l->mu);
    bool changed = l->leading != leading;
    l->leading = leading;
    if (leading)
        l->renewed_ns = l->confirmed_ns = at;
    pthread_mutex_unlock(&l->mu);
    if (!changed)
        return;
    if (leading)
        LOG_INFO(LEASE_LOG, "leader election lock obtained: %s", l->name);
    else
        LOG_INFO(LEASE_LOG, "leader election lock lost: %s", l->name);
    if (l->on_change)
        l->on_change(l->ud, leading);
}

/* Sleeps up to ns (mu not held); true when asked to stop. */
static bool wait_for(k8s_lease *l, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ns / 1000000000LL;
    ts.tv_nsec += ns % 1000000000LL;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    if (!l->stop)
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    bool stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

static void *lease_main(void *arg)
{
    k8s_lease *l = arg;
    /* client-go's JitterFactor 1.2 on the candidate's retry, so replicas spread out */
    unsigned seed = (unsigned)util_now_ns();
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool leading = l->leading, stop = l->stop;
        int64_t renewed = l->renewed_ns;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        int64_t t0 = util_now_ns();
        pthread_mutex_lock(&l->op_mu);
        bool held = leading ? renew(l) || try_acquire_or_renew(l) : try_acquire_or_renew(l);
        pthread_mutex_unlock(&l->op_mu);
        if (held)
            set_leading(l, true, t0);
        else if (leading && util_now_ns() - renewed > l->renew_deadline_ns)
            set_leading(l, false, 0);
        int64_t wait = l->retry_ns;
        if (!held)
            wait += (int64_t)((double)l->retry_ns * 1.2 * (rand_r(&seed) / (double)RAND_MAX));
        if (wait_for(l, wait))
            break;
    }
    return NULL;
}

k8s_lease *k8s_lease_start(k8s_client *kc, const k8s_lease_opts *o)
{
    if (!kc || !o || !o->ns || !o->name || !o->identity || !*o->identity)
        return NULL;
    k8s_lease *l = xcalloc(1, sizeof(*l));
    l->kc = kc;
    l->ns = xstrdup(o->ns);
    l->name = xstrdup(o->name);
    l->identity = xstrdup(o->identity);
    /* istiod's defaults: a 30 s lease, renew deadline half of it, retry a quarter */
    l->duration_ns = o->duration_ns > 0 ? o->duration_ns : 30000000000LL;
    l->renew_deadline_ns = l->duration_ns / 2;
    l->retry_ns = l->duration_ns / 4;
    l->on_change = o->on_change;
    l->ud = o->ud;
    pthread_mutex_init(&l->op_mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
        LOG_ERR(LEASE_LOG, "%s/%s: cannot start the election thread", l->ns, l->name);
        k8s_lease_stop(l);
        return NULL;
    }
    l->started = true;
    LOG_INFO(LEASE_LOG, "leader election for %s/%s as %s (lease %.1f s)", l->ns, l->name,
             l->identity, (double)l->duration_ns / 1e9);
    return l;
}

bool k8s_lease_leading(k8s_lease *l)
{
    if (!l)
        return false;
    pthread_mutex_lock(&l->mu);
    bool v = l->leading && util_now_ns() - l->renewed_ns <= l->renew_deadline_ns;
    pthread_mutex_unlock(&l->mu);
    return v;
}

bool k8s_lease_fence(k8s_lease *l)
{
    if (!l)
        return false;
    int64_t now = util_now_ns();
    pthread_mutex_lock(&l->mu);
    bool leading = l->leading && now - l->renewed_ns <= l->renew_deadline_ns;
    bool fresh = now - l->confirmed_ns < LEASE_FENCE_FRESH_NS;
    pthread_mutex_unlock(&l->mu);
    if (!leading)
        return false;
    if (fresh)
        return true;
    pthread_mutex_lock(&l->op_mu);
    bool ok = renew(l);
    pthread_mutex_unlock(&l->op_mu);
    pthread_mutex_lock(&l->mu);
    if (ok)
        l->renewed_ns = l->confirmed_ns = now;
    pthread_mutex_unlock(&l->mu);
    if (!ok)
        LOG_WARN(LEASE_LOG, "%s/%s: fence failed: the Lease moved; not writing", l->ns, l->name);
    return ok;
}

void k8s_lease_stop(k8s_lease *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (k8s_lease_leading(l)) {
        /* ReleaseOnCancel: the next replica need not wait out the lease */
        char err[512];
        pthread_mutex_lock(&l->mu);
        cJSON *want = lease_obj(l, l->rv, l->acquire_time, l->transitions, true);
        pthread_mutex_unlock(&l->mu);
        if (k8s_update(l->kc, K8S_LEASE, l->ns, want, NULL, err, sizeof(err)) == 0)
            LOG_INFO(LEASE_LOG, "released %s/%s", l->ns, l->name);
        else
            LOG_WARN(LEASE_LOG, "%s/%s: release: %s", l->ns, l->name, err);
        cJSON_Delete(want);
    }
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->op_mu);
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l->rv);
    free(l->seen);
    free(l->acquire_time);
    free(l);
}
