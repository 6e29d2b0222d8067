/* The block/per-token crossover behind block_min_tokens (kernels/routing/routing_impl.h): the
 * AVX-512 router with its block path for any partial block ("block") against its per-token
 * pipeline for any partial block ("pertok"), T = 1..16, interleaved, fastest of 15 rounds. Run
 * while block_min_tokens(p) read a temporary global, `int moe_route_block_min_t_tune` (1: a block
 * of any size; 17: no partial block), defined in routing_avx512.c for this measurement only. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include "moe/moe.h"
extern int moe_route_block_min_t_tune;
void moe_route__avx2(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias, int32_t *ids, float *weights);
void moe_route__avx512(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias, int32_t *ids, float *weights);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static uint64_t rs=88172645463325252ull; static double unif(void){rs^=rs<<13;rs^=rs>>7;rs^=rs<<17;return (rs>>11)*(1.0/9007199254740992.0);}
static double gauss(void){double u=unif()+1e-300,v=unif();return sqrt(-2*log(u))*cos(6.283185307179586*v);}
int main(int argc,char**argv){
  int Ts[]={1,2,4,6,8,10,11,12,13,14,15,16}; int nT=sizeof Ts/sizeof Ts[0];
  const char*only=argc>1?argv[1]:NULL; int tunes[]={1,17,17,17,17};
  int64_t Tmax=4096; int E=256;
  float *lg=malloc(sizeof(float)*Tmax*E); uint16_t *lb=malloc(2*Tmax*E); float bias[256];
  for(int64_t i=0;i<Tmax*E;i++){lg[i]=(float)gauss(); uint32_t u; memcpy(&u,&lg[i],4); lb[i]=(uint16_t)((u+0x7fff+((u>>16)&1))>>16);}
  for(int i=0;i<256;i++)bias[i]=(float)(gauss()*0.05);
  int32_t *ids=malloc(4*Tmax*16); float*w=malloc(4*Tmax*16);
  for(int prof=0;prof<2;prof++) for(int dt=0;dt<2;dt++) for(int m=0;m<10;m++){
    int E_=128,K=8; struct moe_route_params p;
    if(m==MOE_ROUTE_DEEPSEEKV3){E_=256;} if(m==MOE_ROUTE_LLAMA4)K=1;
    p=moe_route_params_default((enum moe_routing_method)m,E_,K);
    p.profile=prof==0?MOE_PROFILE_FLASHINFER:MOE_PROFILE_VLLM;
    p.logits_dtype=dt?MOE_DTYPE_BF16:MOE_DTYPE_F32;
    if(m==MOE_ROUTE_DEEPSEEKV3){p.n_group=8;p.topk_group=4;p.routed_scaling_factor=2.5f;}
    const void*b=NULL; if(m==MOE_ROUTE_DEEPSEEKV3||m==MOE_ROUTE_MINIMAX2){p.bias_dtype=MOE_DTYPE_F32;b=bias;}
    if(m==MOE_ROUTE_MINIMAX2)p.routed_scaling_factor=1.0f;
    if(moe_route_validate(&p)!=MOE_OK){printf("skip %d\n",m);continue;}
    if(only&&strcmp(only,moe_routing_method_name(p.method)))continue;
    const void*L=dt?(const void*)lb:(const void*)lg;
    for(int ti=0;ti<nT;ti++){int T=Ts[ti];
      double best[8]; for(int v=0;v<8;v++)best[v]=1e30;
      int calls=T>=256?2:(T>=16?20:100);
      for(int rep=0;rep<15;rep++) for(int v=0;v<4;v++){
        if(v==0&&T>64)continue;
        if(v>=2)moe_route_block_min_t_tune=tunes[v-2];
        double t0=now();
        for(int c=0;c<calls;c++){
          if(v==0)moe_route__ref(&p,T,L,b,ids,w); else if(v==1)moe_route__avx2(&p,T,L,b,ids,w); else moe_route__avx512(&p,T,L,b,ids,w);}
        double d=(now()-t0)/calls; if(d<best[v])best[v]=d;}
      printf("%-16s %-10s %s T=%5d ref %8.0f avx2 %8.0f block %8.0f pertok %8.0f  ratio %.2f\n",moe_routing_method_name(p.method),moe_profile_name(p.profile),dt?"bf16":"f32 ",T,best[0]<1e29?best[0]:0,best[1],best[2],best[3],best[2]/best[3]);
    }}
  return 0;}
