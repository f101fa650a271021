// A library with __thread state, loaded by probe_thread_state with dlopen:
// its TLS is reached through the DTV (__tls_get_addr), not the static block.
static __thread int counter;

extern "C" int tls_module_bump() { return ++counter; }
