"""IEC 60870-5-104 client on c104: one connection per relay."""
