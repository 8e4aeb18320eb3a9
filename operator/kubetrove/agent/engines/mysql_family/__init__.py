"""What MySQL and MariaDB share, and only that: the pymysql driver core, the backup command shapes, the
table statistics and the system schemas. Each engine's own bundle (``engines/mysql``, ``engines/mariadb``)
adds its replication dialect, tool names and identifier limits.
"""
