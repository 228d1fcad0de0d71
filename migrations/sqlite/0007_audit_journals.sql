CREATE TABLE audit_journals (
    journal TEXT PRIMARY KEY,
    indexed_to BIGINT NOT NULL
);
