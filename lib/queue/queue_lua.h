/*
 * lib/queue/queue_lua.h - the queue's Lua scripts (the .lua files),
 * embedded at build time by embed_lua.py as NUL-terminated arrays.
 */
#ifndef AETH_QUEUE_LUA_H
#define AETH_QUEUE_LUA_H

extern const char aeth__lua_enqueue[];
extern const char aeth__lua_dequeue[];
extern const char aeth__lua_heartbeat[];
extern const char aeth__lua_ack[];
extern const char aeth__lua_nack[];
extern const char aeth__lua_cancel[];
extern const char aeth__lua_watch[];
extern const char aeth__lua_restore[];
extern const char aeth__lua_settle[];
extern const char aeth__lua_rate[];
extern const char aeth__lua_slots[];

#endif
