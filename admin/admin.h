/*
 * sharebus - platform administration (the API manager's tools): the
 * platform CA and client certificates, topics, ACLs (DESIGN.md §3, §8).
 */
#ifndef SB_ADMIN_H
#define SB_ADMIN_H

#include "err.h"

#endif
