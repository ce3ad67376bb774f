"""Actuators: where an action takes effect (Mosquitto dynamic security, the Kafka command topic, a
webhook), each behind the small `Actuator` interface and chosen by name in [respond.routes]."""
