"""The schemas MySQL and MariaDB keep for themselves: never listed, created, dropped or granted by the API.

https://dev.mysql.com/doc/refman/8.4/en/system-schema.html, https://mariadb.com/kb/en/system-tables/.
"""

from __future__ import annotations

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
