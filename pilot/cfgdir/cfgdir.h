/* cfgdir: the config-directory source (--configDir), the embedded default.
 *
 * Reads every *.yaml, *.yml and *.json under a directory, recursively, multi-document
 * (a "List" kind is expanded into its items), and reports each object to a source_sink as
 * if it came from the API server. Then watches the tree with inotify: a changed file
 * upserts its objects and deletes those it no longer has; a removed file deletes its
 * objects; a file that stops parsing is logged (file, line) and its last good objects are
 * kept. Runs one thread of its own; nothing is shared with it but the sink.
 */
#ifndef PILOT_CFGDIR_CFGDIR_H
#define PILOT_CFGDIR_CFGDIR_H

#include "pilot/base/source.h"

typedef struct cfgdir cfgdir;

/* Returns NULL when dir is not a readable directory (logged). */
cfgdir *cfgdir_new(const char *dir, source_sink sink);
/* Scans the tree once (events delivered before it returns, then synced), then starts the
 * watch thread. Returns 0 or -1. */
int cfgdir_start(cfgdir *c);
void cfgdir_free(cfgdir *c);

#endif
