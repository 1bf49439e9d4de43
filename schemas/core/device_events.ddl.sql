CREATE TABLE IF NOT EXISTS core.device_event_files (
    day DATE NOT NULL, file VARCHAR NOT NULL, rows BIGINT NOT NULL, sha256 VARCHAR NOT NULL, runs VARCHAR[],
    PRIMARY KEY (day, file)
);
CREATE TABLE IF NOT EXISTS core.device_event_runs (
    run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ, delivered BIGINT, kept BIGINT, duplicates BIGINT,
    clock_issues BIGINT, late BIGINT
);
