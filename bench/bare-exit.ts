/** The spawn benchmarks' floor for a compiled Bun program: it exits at once (built with the same flags as dist/pai). */
process.exit(0);
