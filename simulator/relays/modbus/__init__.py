"""A simulated Modbus relay on pymodbus' server: register image, event ring and fault
reports."""
