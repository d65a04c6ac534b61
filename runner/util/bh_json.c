/* util/bh_json.c — see header. The dump to a bh_buf goes through jansson's
 * callback so that a body larger than its cap stops at the cap instead of
 * being built whole first. */
#include "util/bh_json.h"

#include <jansson.h>

#include "util/bh_buf.h"
#include "util/bh_err.h"

static int failed(int *bad)
{
    if (bad)
        *bad = 1;
    return BH_EINVAL;
}

int bh_json_set(json_t *o, const char *key, json_t *v, int *bad)
{
    return json_object_set_new(o, key, v) ? failed(bad) : 0;
}

int bh_json_push(json_t *a, json_t *v, int *bad)
{
    return json_array_append_new(a, v) ? failed(bad) : 0;
}

char *bh_json_dump(const json_t *v, size_t flags)
{
    return v ? json_dumps(v, flags) : NULL;
}

struct sink {
    struct bh_buf *b;
    int rc;
};

static int to_buf(const char *p, size_t n, void *data)
{
    struct sink *s = data;
    s->rc = bh_buf_append(s->b, p, n);
    return s->rc ? -1 : 0;
}

int bh_json_dump_buf(struct bh_buf *b, const json_t *v, size_t flags)
{
    struct sink s = {b, 0};
    if (!v)
        return BH_EINVAL;
    if (json_dump_callback(v, to_buf, &s, flags))
        return s.rc ? s.rc : BH_EINVAL;
    return 0;
}

int bh_json_dump_file(FILE *f, const json_t *v, size_t flags)
{
    if (!v)
        return BH_EINVAL;
    return json_dumpf(v, f, flags) ? BH_EIO : 0;
}
