DROP TABLE IF EXISTS telemetry_dead_letter;
