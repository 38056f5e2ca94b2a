"""Leader election through a coordination.k8s.io Lease: the rules (pure), the
elector that applies them, the standby's wait inside kopf's startup, and the push
Service's one endpoint that follows the leader. API calls go through kube/.
"""
