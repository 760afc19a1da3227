"""Not the product: the bundled demo feeds (``feeds/``), the 127.0.0.1 server that
serves them (``localserver``), the demo's run of the DAGs (``run``) and a local
Airflow environment (``airflow``), used by ``newsroom demo`` and the tests."""
