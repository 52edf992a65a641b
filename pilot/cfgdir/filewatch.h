/* filewatch: one file (--meshConfig) watched for new content, the two ways it changes in
 * practice: written in place (an editor, `cp`, `echo >`), or swapped the way a mounted
 * ConfigMap changes (the kubelet writes a new hidden directory and renames the "..data"
 * symlink the file's own symlink points through, so the file's inode never sees a write).
 *
 * The watch is on the file's directory, for every name in it, and on the directory the
 * path resolves into (the "..data" target) when it differs; any event re-reads the path
 * through its symlinks after a short quiet time, and the callback runs only when the
 * bytes differ from the last ones delivered. A file that vanished is not an empty one:
 * nothing is delivered until it is back (so a delete-then-create writer never looks like
 * "no mesh config").
 *
 * One thread of its own calls the callback; nothing else is shared with it.
 */
#ifndef PILOT_CFGDIR_FILEWATCH_H
#define PILOT_CFGDIR_FILEWATCH_H

#include <stddef.h>

typedef struct cfgdir_filewatch cfgdir_filewatch;

/* New content of the watched file: text (NUL-terminated, len bytes) is borrowed for the
 * call. */
typedef void (*cfgdir_filewatch_fn)(void *ud, const char *path, const char *text, size_t len);

/* Starts watching path; the current content is the baseline (not delivered). Files larger
 * than max_bytes are logged and skipped. Returns NULL (logged) when the directory cannot
 * be watched or the thread cannot start. */
cfgdir_filewatch *cfgdir_filewatch_start(const char *path, size_t max_bytes, cfgdir_filewatch_fn fn,
                                         void *ud);
/* Stops the thread (no callback runs after it returns) and frees w; NULL is fine. */
void cfgdir_filewatch_stop(cfgdir_filewatch *w);

#endif
