// A shared library that is not a plugin: it lacks factory_plugin_v1, and load_plugin must say so.
extern "C" __attribute__((visibility("default"))) int factory_not_a_plugin(void) { return 42; }
