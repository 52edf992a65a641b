/* meshwatch: mesh config that takes effect while running, as istiod's mesh watcher does.
 *
 * Where it comes from, as istiod decides: the --meshConfig file when one is given (in a
 * pod, the mounted ConfigMap `istio`; both an in-place write and the kubelet's symlink swap
 * are seen, pilot/cfgdir/filewatch.h); otherwise, in Kubernetes mode, ConfigMap `istio`
 * (key `mesh`) in the system namespace, read from the watch through
 * pilot_meshwatch_sink. A deleted ConfigMap means Istio's defaults again.
 *
 * A new version is parsed whole with the --meshConfig parser (flags_mesh_parse): one
 * that does not parse is refused with its error logged and the last good one stays in
 * force. One that parses is applied: the generators' settings first
 * (xds_server_set_mesh: access logs, metrics provider, trustDomainAliases,
 * extensionProviders, outboundTrafficPolicy), then the model (model_set_mesh:
 * rootNamespace, enableAutoMtls, the default exportTo lists), whose next snapshot is
 * pushed in full to every proxy, and the injector (defaultConfig, its PROXY_CONFIG).
 * trustDomain is the exception: the CA signs with the one it started with, so a change is
 * logged and takes effect at the next start (everything keeps using one trust domain).
 *
 * Threads: the file watch thread or the Kubernetes source's thread calls in; `mu` (a leaf
 * lock, held while applying) orders them.
 */
#ifndef PILOT_MESHWATCH_H
#define PILOT_MESHWATCH_H

#include "pilot/base/source.h"
#include "pilot/flags.h"
#include "pilot/model/model.h"
#include "pilot/webhook/webhook.h"
#include "xds/ads/server.h"

typedef struct pilot_meshwatch pilot_meshwatch;

/* Starts following the mesh config; f->mesh is what is in force now (copied). in_k8s:
 * without --meshConfig, ConfigMap istio in system_ns is followed (through the sink).
 * Returns NULL (logged) when the file cannot be watched. */
pilot_meshwatch *pilot_meshwatch_start(const pilot_flags *f, bool in_k8s, const char *system_ns,
                                       model *m, xds_server *xds);
/* A sink in front of next that takes the ConfigMap events it follows and passes the rest
 * on. w must outlive the source that calls it. */
source_sink pilot_meshwatch_sink(pilot_meshwatch *w, source_sink next);
/* The injector whose PROXY_CONFIG follows defaultConfig from now on (NULL: none); call
 * with NULL before freeing it. */
void pilot_meshwatch_set_injector(pilot_meshwatch *w, wh_injector *wi);
/* The namespace (the return) and name of the ConfigMap followed, or NULL when none: the
 * Kubernetes source must reflect it. */
const char *pilot_meshwatch_configmap(const pilot_meshwatch *w, const char **name);
/* Stops the file watch (no apply runs after it returns) and frees w; NULL is fine. */
void pilot_meshwatch_stop(pilot_meshwatch *w);

#endif
