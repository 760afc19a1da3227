"""Everything derived from the log: entities and story threads (``enrich.*``),
then the dbt models (``transform``). Each can be rebuilt from the events alone."""
