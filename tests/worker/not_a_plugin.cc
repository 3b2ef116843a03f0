// A shared library without DROVER_PLUGIN: loading it must be refused.
extern "C" int not_a_drover_plugin() { return 42; }
