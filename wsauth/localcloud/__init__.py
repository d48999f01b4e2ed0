"""The local cloud: the Pulumi program realized on this machine (moto, Lambda workers, gateway)."""
