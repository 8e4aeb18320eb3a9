"""kubetrove: one Kubernetes API to provision and run MySQL, MariaDB, PostgreSQL, MongoDB and Cassandra."""

__version__ = "0.1.0"
