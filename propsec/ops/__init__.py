"""Operations: what people who run propsec look at (contract section 19): Prometheus
metrics, JSON logs, and the health of the background work."""
