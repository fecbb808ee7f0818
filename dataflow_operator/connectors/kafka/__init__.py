"""Kafka source and sink on confluent-kafka (librdkafka), connectors.md §2.1.

Nothing is imported here: :mod:`.security` serves spec validation, which must not load librdkafka;
the registry loads :mod:`.source` and :mod:`.sink` when a pipeline needs them.
"""
