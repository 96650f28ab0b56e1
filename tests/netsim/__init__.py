"""Network stand-ins for tests that run real proxies on loopback: a DNS server and a TLS site.

They answer as configured and record what they were asked; they never import project code.
"""
