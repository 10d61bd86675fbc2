/* tests/support/port.h - a free TCP port for a test's private server. */
#ifndef AETH_TEST_PORT_H
#define AETH_TEST_PORT_H

/*
 * A TCP port on 127.0.0.1 that is free now (the kernel's choice), or -1.
 * Another process may take it before the server binds it: start the
 * server in a loop of a few attempts.
 */
int aeth_test_free_port(void);

#endif
