import { encapsulatedPodTraffic } from "./encapsulated-pod-traffic.js";

encapsulatedPodTraffic("ipip", "tipip", "on");
