/* yaml: libyaml's event parser turned into cJSON trees, one per document.
 *
 * Scalar typing follows the YAML 1.2 core schema, which is what Kubernetes manifests mean
 * in practice, with one YAML 1.1 carry-over that Kubernetes users rely on:
 *   null:   "", ~, null, Null, NULL
 *   bool:   true, True, TRUE, false, False, FALSE   (yes/no/on/off stay strings)
 *   int:    [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+, and the 1.1 octal 0[0-7]+ ("0644"),
 *           as go-yaml reads file modes in Kubernetes manifests
 *   float:  [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?
 *   .inf/.nan stay strings: JSON has no way to hold them.
 * Only plain scalars are typed; quoted and block (| >) scalars are strings. The tags !!str,
 * !!int, !!float, !!bool and !!null force a type; other tags are ignored.
 *
 * Mappings: keys must be scalars (JSON keys are strings); a duplicate key's last value wins
 * (as in Kubernetes); merge keys (<<) are honoured with explicit keys taking precedence.
 *
 * Bounds for hostile input: nesting depth (YAML_MAX_DEPTH), nodes copied by aliases
 * (YAML_MAX_ALIAS_NODES, the billion-laughs guard), anchors per document
 * (YAML_MAX_ANCHORS). Pure function of its input; no threads, no globals.
 */
#include <yaml.h>

#include "pilot/base/yaml.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libyaml comes in through yaml.h (its name shadows libyaml's own header) */

#include "pilot/base/util.h"

#define YAML_MAX_DEPTH 256
#define YAML_MAX_ALIAS_NODES 1000000u
#define YAML_MAX_ANCHORS 65536u

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_INT "tag:yaml.org,2002:int"
#define TAG_FLOAT "tag:yaml.org,2002:float"
#define TAG_BOOL "tag:yaml.org,2002:bool"
#define TAG_NULL "tag:yaml.org,2002:null"

typedef struct map_entry {
    char *key;
    cJSON *val;
    size_t rank; /* 0 explicit; 1 + index of the merge source otherwise */
    size_t idx;  /* position, for "last wins" and for output order */
    bool loser;
} map_entry;

typedef struct frame {
    bool is_map;
    cJSON *seq;      /* sequences: built as items arrive */
    map_entry *ents; /* mappings: built at the end (dedupe, merges) */
    size_t nents, cap;
    cJSON *merges; /* array of merge sources, in order */
    char *key;     /* mapping: key waiting for its value */
    bool have_key;
    bool key_is_merge;
    char *anchor;
    size_t start_nodes; /* node counter when the collection started */
    size_t height;      /* 1 + max child height */
} frame;

typedef struct anchor {
    char *name;
    cJSON *node;  /* inside the document tree, or in the graveyard */
    size_t nodes; /* nodes in the subtree, what an alias costs */
    size_t height;
} anchor;

typedef struct yst {
    frame stack[YAML_MAX_DEPTH + 1];
    size_t depth;
    anchor *anchors;
    size_t nanchors, capanchors;
    size_t *htab;     /* open addressing: index+1 into anchors, 0 empty */
    size_t htabsize;  /* power of two */
    cJSON *graveyard; /* nodes dropped from the tree that anchors may still name */
    cJSON *root;
    bool have_root;
    size_t nodes;       /* nodes created in this document, including alias copies */
    size_t alias_nodes; /* nodes copied by aliases in this stream */
    char *err;
    size_t errlen;
} yst;

static void yst_err(yst *s, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void yst_err(yst *s, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->errlen)
        snprintf(s->err, s->errlen, "line %zu column %zu: %s", m->line + 1, m->column + 1, msg);
}

/* ---- scalar typing ---- */

static bool is_digit_base(char c, int base)
{
    if (base == 16)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (base == 8)
        return c >= '0' && c <= '7';
    return c >= '0' && c <= '9';
}

static int digit_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Integer per the schema above. Returns true and *out when s is one. */
static bool scalar_int(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false;
    int base = 10;
    double v = 0;

    if (n == 0)
        return false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o')) {
        if (i)
            return false; /* core schema: no sign on 0x/0o */
        base = s[i + 1] == 'x' ? 16 : 8;
        i += 2;
    } else if (n - i > 1 && s[i] == '0') {
        base = 8;
        for (size_t j = i; j < n; j++)
            if (!is_digit_base(s[j], 8))
                base = 10; /* "09": not octal, read as decimal */
    }
    if (i >= n)
        return false;
    for (; i < n; i++) {
        if (!is_digit_base(s[i], base))
            return false;
        v = v * base + digit_val(s[i]);
    }
    *out = neg ? -v : v;
    return true;
}

static bool scalar_float(const char *s, size_t n, double *out)
{
    size_t i = 0, digits = 0;
    char buf[128];
    char *end;

    if (n == 0 || n >= sizeof buf)
        return false;
    if (s[i] == '-' || s[i] == '+')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp++;
        }
        if (!exp)
            return false;
    }
    if (i != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, &end);
    return end == buf + n;
}

static bool eqany(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    return false;
}

static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};

/* A scalar event to a JSON value; NULL with the error set when a tag cannot be honoured. */
static cJSON *scalar_node(yst *s, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    double d;

    if (tag && strcmp(tag, "!") != 0) {
        if (strcmp(tag, TAG_STR) == 0)
            goto string;
        if (strcmp(tag, TAG_INT) == 0) {
            if (scalar_int(v, n, &d))
                return cJSON_CreateNumber(d);
            yst_err(s, &ev->start_mark, "invalid !!int value \"%.*s\"", (int)(n > 64 ? 64 : n), v);
            return NULL;
        }
        if (strcmp(tag, TAG_FLOAT) == 0) {
            if (scalar_int(v, n, &d) || scalar_float(v, n, &d))
                return cJSON_CreateNumber(d);
            yst_err(s, &ev->start_mark, "invalid !!float value \"%.*s\"", (int)(n > 64 ? 64 : n),
                    v);
            return NULL;
        }
        if (strcmp(tag, TAG_BOOL) == 0) {
            if (eqany(v, n, true_words))
                return cJSON_CreateTrue();
            if (eqany(v, n, false_words))
                return cJSON_CreateFalse();
            yst_err(s, &ev->start_mark, "invalid !!bool value \"%.*s\"", (int)(n > 64 ? 64 : n), v);
            return NULL;
        }
        if (strcmp(tag, TAG_NULL) == 0)
            return cJSON_CreateNull();
        /* an application tag (!Foo, !!binary...): keep the value as the style says */
    } else if (tag) {
        goto string; /* "!" is the non-specific tag: a string */
    }
    if (!plain)
        goto string;
    if (n == 0 || eqany(v, n, null_words))
        return cJSON_CreateNull();
    if (eqany(v, n, true_words))
        return cJSON_CreateTrue();
    if (eqany(v, n, false_words))
        return cJSON_CreateFalse();
    if (scalar_int(v, n, &d) || scalar_float(v, n, &d))
        return cJSON_CreateNumber(d);
string : {
    /* libyaml's value is NUL-terminated; an embedded "\0" escape truncates, as JSON
     * strings in cJSON cannot hold NUL anyway. */
    return cJSON_CreateString(v);
}
}

/* ---- anchors ---- */

static size_t anchor_slot(const yst *s, const char *name)
{
    size_t mask = s->htabsize - 1;
    size_t h = (size_t)util_hash64(name, strlen(name), 0) & mask;
    while (s->htab[h] && strcmp(s->anchors[s->htab[h] - 1].name, name) != 0)
        h = (h + 1) & mask;
    return h;
}

static anchor *anchor_find(const yst *s, const char *name)
{
    if (!s->htabsize)
        return NULL;
    size_t h = anchor_slot(s, name);
    return s->htab[h] ? &s->anchors[s->htab[h] - 1] : NULL;
}

/* Takes ownership of name. Returns 0, or -1 when the document has too many anchors. */
static int anchor_add(yst *s, char *name, cJSON *node, size_t nodes, size_t height)
{
    anchor *a = anchor_find(s, name);
    if (a) {
        /* a redefinition: later aliases name the newer node */
        free(name);
        a->node = node;
        a->nodes = nodes;
        a->height = height;
        return 0;
    }
    if (s->nanchors >= YAML_MAX_ANCHORS) {
        free(name);
        return -1;
    }
    if ((s->nanchors + 1) * 2 > s->htabsize) {
        size_t nsize = s->htabsize ? s->htabsize * 2 : 64;
        free(s->htab);
        s->htab = xcalloc(nsize, sizeof *s->htab);
        s->htabsize = nsize;
        for (size_t i = 0; i < s->nanchors; i++)
            s->htab[anchor_slot(s, s->anchors[i].name)] = i + 1;
    }
    if (s->nanchors == s->capanchors) {
        s->capanchors = s->capanchors ? s->capanchors * 2 : 16;
        s->anchors = xrealloc(s->anchors, s->capanchors * sizeof *s->anchors);
    }
    s->anchors[s->nanchors] = (anchor){name, node, nodes, height};
    s->htab[anchor_slot(s, name)] = s->nanchors + 1;
    s->nanchors++;
    return 0;
}

static void anchors_reset(yst *s)
{
    for (size_t i = 0; i < s->nanchors; i++)
        free(s->anchors[i].name);
    s->nanchors = 0;
    if (s->htab)
        memset(s->htab, 0, s->htabsize * sizeof *s->htab);
}

static void bury(yst *s, cJSON *node)
{
    if (!s->graveyard)
        s->graveyard = cJSON_CreateArray();
    cJSON_AddItemToArray(s->graveyard, node);
}

/* ---- frames ---- */

static void frame_free(frame *f)
{
    cJSON_Delete(f->seq);
    for (size_t i = 0; i < f->nents; i++) {
        free(f->ents[i].key);
        cJSON_Delete(f->ents[i].val);
    }
    free(f->ents);
    cJSON_Delete(f->merges);
    free(f->key);
    free(f->anchor);
    memset(f, 0, sizeof *f);
}

static void frame_push_entry(frame *f, char *key, cJSON *val, size_t rank)
{
    if (f->nents == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->ents = xrealloc(f->ents, f->cap * sizeof *f->ents);
    }
    f->ents[f->nents] = (map_entry){key, val, rank, f->nents, false};
    f->nents++;
}

static int ent_cmp(const void *a, const void *b)
{
    const map_entry *x = *(map_entry *const *)a, *y = *(map_entry *const *)b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;           /* explicit keys beat merged ones */
    return x->idx > y->idx ? -1 : (x->idx < y->idx); /* the last one wins */
}

/* The mapping's entries (explicit, then merged) as one object: duplicates resolved (the
 * last explicit value wins, then the earliest merge source), each key at its first
 * position. */
static cJSON *frame_build_map(yst *s, frame *f)
{
    cJSON *obj = cJSON_CreateObject();
    size_t rank = 1;

    for (cJSON *src = f->merges ? f->merges->child : NULL; src; src = src->next, rank++) {
        for (cJSON *it = src->child; it; it = it->next)
            frame_push_entry(f, xstrdup(it->string), cJSON_Duplicate(it, true), rank);
    }
    if (f->nents > 1) {
        map_entry **sorted = xmalloc(f->nents * sizeof *sorted);
        for (size_t i = 0; i < f->nents; i++)
            sorted[i] = &f->ents[i];
        qsort(sorted, f->nents, sizeof *sorted, ent_cmp);
        for (size_t i = 0, j; i < f->nents; i = j) {
            /* group [i, j) shares a key; sorted[i] holds the winning value, which moves to
             * the key's first position so the output keeps the document's key order */
            map_entry *first = sorted[i];
            for (j = i + 1; j < f->nents && strcmp(sorted[j]->key, sorted[i]->key) == 0; j++)
                if (sorted[j]->idx < first->idx)
                    first = sorted[j];
            if (first != sorted[i]) {
                cJSON *tmp = first->val;
                first->val = sorted[i]->val;
                sorted[i]->val = tmp;
            }
            for (size_t k = i; k < j; k++)
                sorted[k]->loser = sorted[k] != first;
        }
        free(sorted);
    }
    for (size_t i = 0; i < f->nents; i++) {
        map_entry *e = &f->ents[i];
        if (e->loser)
            bury(s, e->val); /* an anchor may still name it */
        else
            cJSON_AddItemToObject(obj, e->key, e->val);
        free(e->key);
        e->key = NULL;
        e->val = NULL;
    }
    f->nents = 0;
    return obj;
}

/* A finished node (owned here) goes to its parent, or becomes the document root. */
static int attach(yst *s, cJSON *node, size_t height, char *anchor_name, size_t nodes,
                  const yaml_mark_t *mark)
{
    if (anchor_name && anchor_add(s, anchor_name, node, nodes, height) < 0) {
        cJSON_Delete(node);
        yst_err(s, mark, "too many anchors");
        return -1;
    }
    if (s->depth == 0) {
        s->root = node;
        s->have_root = true;
        return 0;
    }
    frame *p = &s->stack[s->depth - 1];
    if (height + 1 > p->height)
        p->height = height + 1;
    if (!p->is_map) {
        cJSON_AddItemToArray(p->seq, node);
        return 0;
    }
    if (!p->have_key) {
        /* only scalars reach here as keys (see key handling); anything else is refused */
        cJSON_Delete(node);
        yst_err(s, mark, "mapping key must be a scalar");
        return -1;
    }
    if (p->key_is_merge) {
        bool ok = cJSON_IsObject(node);
        if (cJSON_IsArray(node)) {
            ok = true;
            for (cJSON *it = node->child; it; it = it->next)
                ok = ok && cJSON_IsObject(it);
        }
        if (!ok) {
            cJSON_Delete(node);
            yst_err(s, mark, "merge key value must be a mapping or a sequence of mappings");
            return -1;
        }
        if (!p->merges)
            p->merges = cJSON_CreateArray();
        if (cJSON_IsObject(node)) {
            cJSON_AddItemToArray(p->merges, node);
        } else {
            /* in "<<: [*a, *b]" earlier sources win: keep sequence order as rank order */
            while (node->child)
                cJSON_AddItemToArray(p->merges, cJSON_DetachItemViaPointer(node, node->child));
            bury(s, node);
        }
    } else {
        frame_push_entry(p, p->key, node, 0);
        p->key = NULL;
    }
    free(p->key);
    p->key = NULL;
    p->have_key = false;
    p->key_is_merge = false;
    return 0;
}

/* A key from a scalar event or an aliased scalar. */
static int set_key(yst *s, frame *f, const char *key, bool maybe_merge)
{
    (void)s;
    f->key = xstrdup(key);
    f->have_key = true;
    f->key_is_merge = maybe_merge && strcmp(key, "<<") == 0;
    return 0;
}

static char *node_key_text(const cJSON *n)
{
    if (cJSON_IsString(n))
        return xstrdup(n->valuestring);
    if (cJSON_IsNull(n))
        return xstrdup("null");
    if (cJSON_IsTrue(n))
        return xstrdup("true");
    if (cJSON_IsFalse(n))
        return xstrdup("false");
    if (cJSON_IsNumber(n))
        return cJSON_PrintUnformatted(n);
    return NULL;
}

static bool expecting_key(const yst *s)
{
    return s->depth > 0 && s->stack[s->depth - 1].is_map && !s->stack[s->depth - 1].have_key;
}

static char *take_anchor(const yaml_char_t *a)
{
    return a ? xstrdup((const char *)a) : NULL;
}

static int on_scalar(yst *s, const yaml_event_t *ev)
{
    if (expecting_key(s)) {
        frame *f = &s->stack[s->depth - 1];
        const char *v = (const char *)ev->data.scalar.value;
        if (ev->data.scalar.anchor) {
            cJSON *k = cJSON_CreateString(v);
            bury(s, k);
            if (anchor_add(s, take_anchor(ev->data.scalar.anchor), k, 1, 1) < 0) {
                yst_err(s, &ev->start_mark, "too many anchors");
                return -1;
            }
        }
        s->nodes++;
        return set_key(s, f, v, ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    }
    cJSON *node = scalar_node(s, ev);
    if (!node)
        return -1;
    s->nodes++;
    return attach(s, node, 1, take_anchor(ev->data.scalar.anchor), 1, &ev->start_mark);
}

static int on_alias(yst *s, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    anchor *a = anchor_find(s, name);

    if (!a) {
        yst_err(s, &ev->start_mark, "unknown anchor \"%.64s\"", name);
        return -1;
    }
    if (a->nodes > YAML_MAX_ALIAS_NODES - s->alias_nodes) {
        yst_err(s, &ev->start_mark, "alias expansion too large");
        return -1;
    }
    if (s->depth + a->height > YAML_MAX_DEPTH) {
        yst_err(s, &ev->start_mark, "nesting too deep (limit %d)", YAML_MAX_DEPTH);
        return -1;
    }
    s->alias_nodes += a->nodes;
    s->nodes += a->nodes;
    if (expecting_key(s)) {
        char *k = node_key_text(a->node);
        if (!k) {
            yst_err(s, &ev->start_mark, "mapping key must be a scalar");
            return -1;
        }
        frame *f = &s->stack[s->depth - 1];
        f->key = k;
        f->have_key = true;
        f->key_is_merge = false;
        return 0;
    }
    return attach(s, cJSON_Duplicate(a->node, true), a->height, NULL, a->nodes, &ev->start_mark);
}

static int on_start(yst *s, const yaml_event_t *ev, bool is_map)
{
    const yaml_char_t *anc =
        is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    if (expecting_key(s)) {
        yst_err(s, &ev->start_mark, "mapping key must be a scalar");
        return -1;
    }
    if (s->depth >= YAML_MAX_DEPTH) {
        yst_err(s, &ev->start_mark, "nesting too deep (limit %d)", YAML_MAX_DEPTH);
        return -1;
    }
    frame *f = &s->stack[s->depth++];
    memset(f, 0, sizeof *f);
    f->is_map = is_map;
    if (!is_map)
        f->seq = cJSON_CreateArray();
    f->anchor = take_anchor(anc);
    f->start_nodes = s->nodes;
    f->height = 1;
    s->nodes++;
    return 0;
}

static int on_end(yst *s, const yaml_event_t *ev)
{
    frame *f = &s->stack[s->depth - 1];
    cJSON *node;
    char *anc = f->anchor;
    size_t height = f->height, nodes = s->nodes - f->start_nodes;

    if (f->is_map) {
        node = frame_build_map(s, f);
    } else {
        node = f->seq;
        f->seq = NULL;
    }
    f->anchor = NULL;
    frame_free(f);
    s->depth--;
    return attach(s, node, height, anc, nodes, &ev->start_mark);
}

static void yst_reset_doc(yst *s)
{
    while (s->depth > 0)
        frame_free(&s->stack[--s->depth]);
    anchors_reset(s);
    cJSON_Delete(s->graveyard);
    s->graveyard = NULL;
    cJSON_Delete(s->root);
    s->root = NULL;
    s->have_root = false;
    s->nodes = 0;
}

static void parser_error(yst *s, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    if (p->context)
        yst_err(s, m, "%s %s", problem, p->context);
    else
        yst_err(s, m, "%s", problem);
}

/* ---- plain scalars with ':' in flow collections ------------------------------------------
 *
 * libyaml follows YAML 1.1 and refuses a ':' inside a plain scalar of a flow collection
 * ("found unexpected ':'"), so `addresses: [1.2.3.4, 001:db8::]` or `[http://a]` fail where
 * Kubernetes' reader (go-yaml) takes "001:db8::" as one string. When a document fails with
 * exactly that error it is parsed once more from a copy in which each such scalar inside
 * [...] or {...} is double-quoted; nothing else changes. Quoted strings, comments and block
 * scalars (| >) are copied as they are, so their brackets never count as flow. */

static bool yq_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

/* Indentation of the line holding position i. */
static size_t yq_indent(const char *b, size_t i)
{
    size_t ls = i;
    while (ls > 0 && b[ls - 1] != '\n')
        ls--;
    size_t n = 0;
    while (b[ls + n] == ' ')
        n++;
    return n;
}

/* The quoted copy (heap, NUL-terminated, *outlen set), or NULL when it would not grow
 * (nothing to quote) or past twice the input. */
static char *quote_flow_colons(const char *b, size_t len, size_t *outlen)
{
    strbuf o;
    strbuf_init(&o, 2 * len + 64);
    size_t i = 0, depth = 0;
    char last = '\n'; /* last significant character copied */
    bool changed = false, ok = true;
    while (i < len && ok) {
        char ch = b[i];
        bool tok_start = last == '\n' || last == ' ' || last == '[' || last == '{' || last == ',' ||
                         last == ':' || last == '-' || last == '?';
        if (ch == '#' && (i == 0 || yq_blank(b[i - 1]))) {
            while (i < len && b[i] != '\n')
                ok = ok && strbuf_append(&o, &b[i++], 1) == 0;
            continue;
        }
        if ((ch == '\'' || ch == '"') && tok_start) {
            size_t j = i + 1;
            while (j < len) {
                if (ch == '"' && b[j] == '\\' && j + 1 < len) {
                    j += 2;
                    continue;
                }
                if (b[j] == ch) {
                    if (ch == '\'' && j + 1 < len && b[j + 1] == '\'') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j++;
            }
            j = j < len ? j + 1 : len;
            ok = strbuf_append(&o, b + i, j - i) == 0;
            i = j;
            last = ch;
            continue;
        }
        if (depth == 0 && (ch == '|' || ch == '>') && tok_start && last != '\n' && last != ' ') {
            /* a block scalar: its lines (deeper than the key's) are text */
            size_t ind = yq_indent(b, i), j = i;
            while (j < len && b[j] != '\n')
                j++;
            while (j < len) {
                size_t k = j + 1, n = 0;
                while (k + n < len && b[k + n] == ' ')
                    n++;
                bool blank = k + n >= len || b[k + n] == '\n';
                if (!blank && n <= ind)
                    break;
                j = k + n;
                while (j < len && b[j] != '\n')
                    j++;
            }
            ok = strbuf_append(&o, b + i, j - i) == 0;
            i = j;
            last = '\n';
            continue;
        }
        if (ch == '[' || ch == '{')
            depth++;
        else if ((ch == ']' || ch == '}') && depth)
            depth--;
        if (depth && tok_start && !strchr(" \t\r\n,[]{}#&*!|>%@`", ch)) {
            size_t j = i, colon = 0;
            /* the input is not NUL-terminated: a colon at its very end is followed by "end",
             * which counts as blank (found by fuzz_yaml) */
            while (j < len && !strchr(",[]{}\n", b[j]) &&
                   !(b[j] == ':' && (j + 1 >= len || yq_blank(b[j + 1]))) &&
                   !(b[j] == '#' && yq_blank(b[j - 1]))) {
                if (b[j] == ':' && j > i)
                    colon++;
                j++;
            }
            size_t e = j;
            while (e > i && yq_blank(b[e - 1]))
                e--;
            if (colon) {
                ok = strbuf_append(&o, "\"", 1) == 0;
                for (size_t k = i; k < e && ok; k++) {
                    if (b[k] == '"' || b[k] == '\\')
                        ok = strbuf_append(&o, "\\", 1) == 0;
                    ok = ok && strbuf_append(&o, &b[k], 1) == 0;
                }
                ok = ok && strbuf_append(&o, "\"", 1) == 0 && strbuf_append(&o, b + e, j - e) == 0;
                changed = true;
            } else {
                ok = strbuf_append(&o, b + i, j - i) == 0;
            }
            i = j;
            last = 'x';
            continue;
        }
        ok = strbuf_append(&o, &ch, 1) == 0;
        if (ch == '\n')
            last = '\n';
        else if (ch != ' ' && ch != '\t' && ch != '\r')
            last = ch;
        else if (last == ':' || last == '-' || last == '?')
            last = ' ';
        i++;
    }
    if (!ok || !changed) {
        strbuf_free(&o);
        return NULL;
    }
    return strbuf_steal(&o, outlen);
}

static int parse_docs(const char *buf, size_t len, cJSON ***docs, size_t *ndocs, char *err,
                      size_t errlen, bool *flow_colon);

int yaml_to_json_docs(const char *buf, size_t len, cJSON ***docs, size_t *ndocs, char *err,
                      size_t errlen)
{
    bool flow_colon = false;
    int rc = parse_docs(buf, len, docs, ndocs, err, errlen, &flow_colon);
    if (rc == 0 || !flow_colon)
        return rc;
    size_t qlen = 0;
    char *q = quote_flow_colons(buf, len, &qlen);
    if (!q)
        return rc;
    char err2[8];
    bool again = false;
    if (parse_docs(q, qlen, docs, ndocs, err2, sizeof err2, &again) == 0) {
        if (errlen)
            err[0] = '\0';
        rc = 0;
    }
    free(q);
    return rc; /* on failure, the first attempt's error (about the input as written) */
}

static int parse_docs(const char *buf, size_t len, cJSON ***docs, size_t *ndocs, char *err,
                      size_t errlen, bool *flow_colon)
{
    int rc = -1;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev = false, done = false;
    yst *s = xcalloc(1, sizeof *s);
    cJSON **out = NULL;
    size_t nout = 0, capout = 0;

    *docs = NULL;
    *ndocs = 0;
    if (errlen)
        err[0] = '\0';
    s->err = err;
    s->errlen = errlen;
    if (!yaml_parser_initialize(&parser)) {
        if (errlen)
            snprintf(err, errlen, "line 1 column 1: cannot initialize the YAML parser");
        free(s);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(s, &parser);
            *flow_colon = parser.problem && strcmp(parser.problem, "found unexpected ':'") == 0;
            goto out;
        }
        have_ev = true;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            yst_reset_doc(s);
            break;
        case YAML_DOCUMENT_END_EVENT:
            /* an empty document (or one that is just null) is skipped, as kubectl does */
            if (s->have_root && s->root && !cJSON_IsNull(s->root)) {
                if (nout == capout) {
                    capout = capout ? capout * 2 : 8;
                    out = xrealloc(out, capout * sizeof *out);
                }
                out[nout++] = s->root;
                s->root = NULL;
            }
            yst_reset_doc(s);
            break;
        case YAML_SCALAR_EVENT:
            if (on_scalar(s, &ev) < 0)
                goto out;
            break;
        case YAML_ALIAS_EVENT:
            if (on_alias(s, &ev) < 0)
                goto out;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (on_start(s, &ev, ev.type == YAML_MAPPING_START_EVENT) < 0)
                goto out;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (on_end(s, &ev) < 0)
                goto out;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        have_ev = false;
    }
    *docs = out;
    *ndocs = nout;
    out = NULL;
    nout = 0;
    rc = 0;
out:
    if (have_ev)
        yaml_event_delete(&ev);
    for (size_t i = 0; i < nout; i++)
        cJSON_Delete(out[i]);
    free(out);
    yst_reset_doc(s);
    free(s->anchors);
    free(s->htab);
    free(s);
    yaml_parser_delete(&parser);
    return rc;
}
