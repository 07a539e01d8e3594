"""Customer records: the SQL schema, the repository the actions use, demo data and import."""
