#include <stdio.h>
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "log.h"
int main(void) { LOG_INFO("default", "skeleton"); return 0; }
