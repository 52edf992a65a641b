/* request: the `pilot-discovery request` command (see request.c). */
#ifndef PILOT_REQUEST_H
#define PILOT_REQUEST_H

/* Sends METHOD /PATH (with body when non-NULL) to the local monitoring port and prints the
 * reply. Returns the process exit code: 0, or 1 with the reason on stderr. */
int pilot_request(const char *method, const char *path, const char *body);

#endif
