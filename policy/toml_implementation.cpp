// toml++'s implementation, compiled here once; every other file includes its declarations only
// (TOML_HEADER_ONLY=0, set for the whole tree by the fdbroker_toml target).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
