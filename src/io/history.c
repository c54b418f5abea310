/* history: a growable array of EpochStats. Allocates only between epochs,
 * never in the training step. */
#include "mnist/history.h"

#include <stdlib.h>
#include <string.h>

int history_push(History *h, const EpochStats *s, Error *e)
{
    if (h->count == h->cap) {
        int cap = h->cap ? 2 * h->cap : 32;
        EpochStats *items = realloc(h->items, sizeof *items * (size_t)cap);
        if (!items)
            return err_set(e, "out of memory growing the epoch history");
        h->items = items;
        h->cap = cap;
    }
    h->items[h->count++] = *s;
    return 0;
}

void history_truncate(History *h, int count)
{
    if (count < h->count)
        h->count = count < 0 ? 0 : count;
}

void history_free(History *h)
{
    free(h->items);
    memset(h, 0, sizeof *h);
}
