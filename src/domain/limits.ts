/** Limits shared by the Agent schema and the harness, in a leaf module the harness can load cheaply. */

/** Model calls per session when `spec.maxTurns` is not set. */
export const DEFAULT_MAX_TURNS = 50;
