/*
 * Random scenarios (pvha-sim --random): a cluster of 2-8 nodes, guests with
 * memory, priorities, placement rules and dependencies, and a fault
 * schedule, all from one seed, written as a scenario file so that a failing
 * seed replays as it is.
 */
#ifndef PVHA_SIM_RANDOM_H
#define PVHA_SIM_RANDOM_H

#include <stdint.h>

/* The last fault of a random scenario is at or before this (ms). */
#define SIM_RANDOM_FAULTS_END 40000
/* Every guest that should run runs this long after the last fault
 * (docs/simulator.md derives it). */
#define SIM_RANDOM_LIVENESS_MS 60000

/* Writes the scenario of seed into *text (malloc'd). Returns 0 or -ENOMEM. */
int sim_random_scenario(uint64_t seed, char **text);

#endif
