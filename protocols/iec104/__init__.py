"""IEC 60870-5-104 client on c104: one connection per relay (see README.md).

`codec` is pure (c104 objects and ASDU bytes to observation fields); `link` holds c104 and
its threads; `driver` implements `protocols.driver.Driver`.
"""
