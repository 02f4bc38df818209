"""Events over MQTT: the payloads (`schema.py`), the broker connection (`client.py`), Home Assistant's
discovery (`discovery.py`) and the output the event bus hands events to (`output.py`)."""
