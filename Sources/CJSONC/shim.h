/* The json-c API sevvm's QMP codec uses (Debian: libjson-c-dev). */
#include <json-c/json.h>
#include <json-c/json_tokener.h>
