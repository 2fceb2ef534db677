"""Optional Django database engines (``ENGINE = "dbconnmgr.db.postgresql"``)."""
