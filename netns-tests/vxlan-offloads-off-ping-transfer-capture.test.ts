import { encapsulatedPodTraffic } from "./encapsulated-pod-traffic.js";

encapsulatedPodTraffic("vxlan", "tvxoff", "off");
