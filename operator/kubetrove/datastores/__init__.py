"""kubetrove.datastores: everything the operator knows about each engine, behind one Protocol.

- ``base``: the ``Datastore`` Protocol and its value types.
- ``registry``: ``REGISTRY`` (Engine -> strategy, an explicit dict) and ``get(engine)``.
- one subpackage per engine (``mysql``, ``mariadb``, ``postgresql``, ``mongodb``, ``cassandra``), named
  as the ``Engine`` value; MySQL and MariaDB share ``_mysql_common``; engines never import each other.
- ``params``: catalog checks shared by every engine; ``quantity``: Kubernetes quantities;
  ``validation``: ``validate_spec``, the semantic checks beyond the CRD schema.
"""
