-- A warehouse built before a day could hold several files keyed core.device_event_files by day alone;
-- DuckDB cannot change a primary key, so the table is copied under the new key (one transaction).
CREATE TABLE core.device_event_files_by_file (
    day DATE NOT NULL, file VARCHAR NOT NULL, rows BIGINT NOT NULL, sha256 VARCHAR NOT NULL, runs VARCHAR[],
    PRIMARY KEY (day, file)
);
INSERT INTO core.device_event_files_by_file SELECT day, file, rows, sha256, runs FROM core.device_event_files;
DROP TABLE core.device_event_files;
ALTER TABLE core.device_event_files_by_file RENAME TO device_event_files;
