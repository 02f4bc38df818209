"""The fleet hub (`edgeguard hub`): the events of many devices from the MQTT broker, stored once, on a map."""
